# Early-fusion baseline: the optical and DSM channels stacked into ONE input
# tensor (rgb:3 + dsm:1 = 4 channels) for a standard mmseg encoder-decoder:
# ResNetV1c-18 (output stride 32, 4 stages) + UPerHead (128 channels) and an
# auxiliary FCNHead on stage 3 (training only).
#
# A dataset config provides `data_preprocessor` (MultiModalSegDataPreProcessor
# with the modality spec and its per-channel mean / std); a derived config sets
# model.data_preprocessor={{_base_.data_preprocessor}}. The default below is
# the 4-channel spec of the ISPRS-style data (8-bit optical in 0-255 with
# ImageNet statistics, DSM min-max normalised per tile to [0, 1] by the
# loader). No top-level `data_preprocessor` here: it would clash with the
# dataset config's when both are bases.
#
# Trained from scratch: mmseg's ImageNet ResNet-18 checkpoints have a 3-channel
# stem. (SyncBN: multi-GPU; CPU runs use norm_cfg=dict(type='BN').)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    # Usually replaced by the dataset config's `data_preprocessor`.
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
