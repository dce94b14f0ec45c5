# MoBaNet (reference-compatible form), DINOv2 ViT-B/14 backbone.
#
# One frozen DINOv2 ViT-B/14 shared by the RGB (or IRRG) and DSM streams;
# CPIA before each of the 4 stages (taps after blocks 2, 5, 8, 11), DGFM
# after each stage + a shared 1x1 projection to 256 channels, UperNet (64
# channels) on the 4 fused maps; in training only, MCRM masking of the batch
# and two auxiliary heads (RGB, DSM) on the stage-1 maps supervised on the
# main prediction's hard pixels (lambda_aux = 0.01).
# Trainable parameters (6 classes): 6,179,456 (paper Table III: 6.18M).
#
# The frozen weights: the official `dinov2_vitb14_pretrain.pth`
# (https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth),
# converted once with
#   python tools/model_converters/dinov2.py \
#       dinov2_vitb14_pretrain.pth pretrain/dinov2_vitb14_converted.pth
# (the backbone also accepts the official file as is and converts it on the
# fly). They are loaded by init_weights at the start of training and, since
# checkpoints hold only the trainable weights (TrainableCheckpointHook in the
# MoBaNet configs), again from this file whenever a checkpoint is loaded.
#
# A derived config sets model.data_preprocessor={{_base_.data_preprocessor}}
# from its dataset config (see configs/mobanet/dinov2_vitb_potsdam.py); the
# backbone and MCRM take the modality spec from it. The spec below is the
# default 4-channel ISPRS one (rgb:3 + dsm:1; 8-bit optical with ImageNet
# statistics, DSM min-max normalised per tile to [0, 1] by the loader).
# No top-level `data_preprocessor` / `modalities` / `crop_size` here: they
# would clash with the dataset config's when both are bases.
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN in one process
model = dict(
    type='MultiModalEncoderDecoder',
    data_preprocessor=dict(
        type='MultiModalSegDataPreProcessor',
        modalities=[
            dict(
                name='rgb',
                channels=3,
                kind='optical',
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375]),
            dict(
                name='dsm',
                channels=1,
                kind='elevation',
                mean=[0.0],
                std=[1.0]),
        ],
        size=(256, 256),
        pad_val=0,
        seg_pad_val=255,
        # MCRM: a quarter of each training batch has one rectangle (10-30 %
        # of the image, aspect 0.5-2) of either its RGB or its DSM set to 0
        # after normalisation, never both.
        batch_augments=[
            dict(
                type='MCRM',
                ratio=0.25,
                num_rects=1,
                area_range=(0.1, 0.3),
                aspect_range=(0.5, 2.0),
                fill_value=0.)
        ]),
    backbone=dict(
        type='MultiStreamViT',
        # modalities: the data preprocessor's spec
        family='dinov2',
        arch='base',
        out_indices=[2, 5, 8, 11],
        # the reference's DSM embedding: a trainable copy of the pretrained
        # 3->768 patch embedding, the DSM replicated to 3 channels ('native'
        # = a 1-channel conv, 301,056 fewer parameters, same function)
        aux_embed='replicate',
        # CPIA, reference form (x_m <- x_m + P_m); 'adapter' = the paper's
        # prompt-injected adapter (Eq. 9-11)
        stage_adapter=dict(type='CPIA', mode='additive'),
        tap_transform='norm',  # the frozen final LayerNorm at each tap
        # the official DINOv2 rule: bicubic with scale_factor (h + 0.1) / 37
        # ('size' = mmpretrain's size=(h, w), other sampling points)
        pos_embed_resize='dinov2',
        frozen_checkpoint='pretrain/dinov2_vitb14_converted.pth'),
    neck=dict(
        type='DGFMNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=256,
        fusion='dgfm'),
    # The reference's UperNet: ReLU6 in every conv-BN-activation block, and
    # lateral 1x1 convs of conv + BN only (mmseg: ReLU in both places).
    decode_head=dict(
        type='UPerHeadNoBias',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=64,
        dropout_ratio=0.1,
        num_classes=6,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU6'),
        lateral_act_cfg=None,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    # One head per modality, on its projected stage-1 map; training only.
    auxiliary_head=dict(
        type='FCNHeadNoBias',
        in_channels=256,
        in_index=0,
        channels=256,
        num_convs=1,
        kernel_size=3,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=6,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU6'),
        align_corners=False,
        # unused: the aux heads are trained by `aux_loss` below
        loss_decode=dict(
            type='CrossEntropyLoss', loss_weight=1.0, avg_non_ignore=True)),
    aux_modalities=None,  # every modality of the spec
    # L = CE(P, Y) + lambda_aux * sum_m CE(P_m, Y; hard pixels of P)
    aux_loss=dict(type='HardPixelCrossEntropyLoss', loss_weight=0.01),
    # Modality-missing evaluation, e.g. RGB only:
    #   --cfg-options model.drop_modalities="['dsm']"
    drop_modalities=None,
    train_cfg=dict(),
    # Sliding window 256, stride 32, logits summed (the paper's protocol).
    test_cfg=dict(mode='slide', crop_size=(256, 256), stride=(32, 32)))
