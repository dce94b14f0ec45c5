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
# The modality spec comes from the dataset config's top-level `modalities`
# (declared once; MultiModalRunner hands it to the model, which passes it to
# the data preprocessor, backbone and MCRM), the training crop padding from
# its `data_preprocessor` (merged into the model's).
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN in one process
model = dict(
    type='MultiModalEncoderDecoder',
    data_preprocessor=dict(
        type='MultiModalSegDataPreProcessor',
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
    #   --cfg-options model.absent="['dsm']"
    absent=None,
    train_cfg=dict(),
    # Sliding window 256, stride 32, logits summed (the paper's protocol).
    test_cfg=dict(mode='slide', crop_size=(256, 256), stride=(32, 32)))
