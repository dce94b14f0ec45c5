# SGMA (Wen et al.): one shared PVT-v2-b2 (timm, through mmseg's
# TIMMBackbone) for every modality, SGF per scale, an all-MLP head, MAS in
# training with L = 2 L_SGF + 1 L_MAS. The head is our choice (the paper
# does not name it): mmseg's SegformerHead, 256 channels.
# Initialisation: the paper does not say how its encoder starts; this
# config starts from random weights. ImageNet weights (the usual start
# for PVT-v2 / ResNet-50, timm cannot download here): put timm's pvt_v2_b2
# file in pretrain/ and set
#   model.backbone.backbone.checkpoint_path='pretrain/pvt_v2_b2.pth'
num_classes = 5
norm_cfg = dict(type='SyncBN', requires_grad=True)
in_channels = [64, 128, 320, 512]
model = dict(
    type='SGMAEncoderDecoder',
    # the modality spec: the dataset config's top-level `modalities`
    data_preprocessor=dict(
        type='MultiModalSegDataPreProcessor',
        size=(512, 512),
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='MultiStreamEncoder',
        backbone=dict(
            type='TIMMBackbone',
            model_name='pvt_v2_b2',
            features_only=True,
            pretrained=False,
            checkpoint_path='',
            out_indices=(0, 1, 2, 3)),
        # 1-channel modalities (DSM, NIR, SAR) repeated to 3 channels
        channel_adapter='replicate'),
    neck=dict(
        type='SGFNeck',
        in_channels=in_channels,
        num_classes=num_classes,
        sp_heads=8,
        rp_heads=4),
    decode_head=dict(
        type='SegformerHead',
        in_channels=in_channels,
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    mas=True,
    # one sampled modality per stage for the whole batch (the paper's
    # text); 'sample': one per sample and stage
    mas_granularity='iteration',
    loss_weights=dict(sgf=2.0, mas=1.0),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
