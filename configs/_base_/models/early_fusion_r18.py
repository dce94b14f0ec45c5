# Early-fusion baseline: the optical and DSM channels stacked into ONE input
# tensor (rgb:3 + dsm:1 = 4 channels) for a standard mmseg encoder-decoder:
# ResNetV1c-18 (output stride 32, 4 stages) + UPerHead (128 channels) and an
# auxiliary FCNHead on stage 3 (training only).
#
# The modality spec (and its per-channel mean / std) comes from the dataset
# config's top-level `modalities`; the segmentor zeroes absent modalities and
# keeps mmseg's auxiliary head (modality_aux_heads=False).
#
# Trained from scratch: mmseg's ImageNet ResNet-18 checkpoints have a 3-channel
# stem. (SyncBN: multi-GPU; CPU runs use norm_cfg=dict(type='BN').)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='MultiModalEncoderDecoder',
    modality_aux_heads=False,
    data_preprocessor=dict(
        type='MultiModalSegDataPreProcessor',
        pad_val=0,
        seg_pad_val=255),
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        in_channels=4,  # rgb:3 + dsm:1, stacked
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='UPerHead',
        in_channels=[64, 128, 256, 512],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=128,
        dropout_ratio=0.1,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=256,
        in_index=2,
        channels=64,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
