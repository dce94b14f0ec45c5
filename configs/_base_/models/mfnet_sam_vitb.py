# MFNet (Ma et al., "A Unified Framework with Multimodal Fine-tuning for
# Remote Sensing Semantic Segmentation", arXiv 2410.11160; code: github
# sstary/SSRS, folder MFNet), SAM ViT-B, MMAdapter.
#
# One frozen SAM image encoder shared by the optical and DSM streams: the
# DSM (min-max normalised per tile by the loader, replicated to 3 channels)
# goes through the same frozen patch embedding (aux_embed='shared'), both
# streams through the same frozen blocks (run as one batch) and SAM neck
# (768 -> 256, stride 16). PEFT wrappers are injected into every block in
# place (see mmrsfusion/models/peft): MMAdapter = a per-modality adapter
# after attention + cross-modal MLP-stage adapters mixed by learnable
# lambdas (init 0.5). DFM (per-modality simple pyramid x4/x2/x1/x0.5 + SE
# fusion per level) and the UNetFormer decoder (64 channels, 8 heads,
# window 8) follow.
# Trainable: backbone 14,201,880 + DFM 1,643,136 + decoder 515,102 (6
# classes); the reference also builds SAM's prompt encoder and mask decoder
# (4.06M parameters, unused): not here.
#
# Deliberate differences from the reference code (config choices):
# - SAM's pixel mean / std on the optical stream (the reference feeds
#   image / 255 unnormalised);
# - the relative-position tables are loaded from the SAM checkpoint (the
#   reference never loads them, a name mismatch, so its rel-pos bias is 0)
#   and the pos-embed is resized bicubically from 64x64 (as the reference);
# - one norm type (LayerNorm) in both modalities' DFM x4 branch (the
#   reference: LayerNorm for RGB, BatchNorm for the DSM): DFMNeck norm_cfg;
# - the decoder's final upsampling is mmseg's resize to the input
#   (bilinear, the same as the reference's x4).
#
# Frozen weights: the official `sam_vit_b_01ec64.pth`
# (https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth),
# used as is or converted once with
#   python tools/model_converters/sam.py \
#       sam_vit_b_01ec64.pth pretrain/sam_vit_b_converted.pth
norm_cfg = dict(type='SyncBN', requires_grad=True)  # BN in one process
model = dict(
    type='MultiModalEncoderDecoder',
    data_preprocessor=dict(
        type='MultiModalSegDataPreProcessor',
        size=(256, 256),
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='MultiStreamViT',
        family='sam',
        arch='base',
        out_indices=[11],  # the last block, through the SAM neck
        tap_transform='neck',
        aux_embed='shared',
        peft=[
            dict(type='AttnAdapter', targets='layers.*.attn', ratio=0.25),
            dict(
                type='FFNAdapter',
                targets='layers.*.ffn',
                ratio=0.25,
                cross_modal=True),
        ],
        frozen_checkpoint='pretrain/sam_vit_b_converted.pth'),
    neck=dict(
        type='DFMNeck',
        in_channels=256,
        norm_cfg=dict(type='mmpretrain.LN2d', eps=1e-6)),
    decode_head=dict(
        type='UNetFormerHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        channels=64,
        num_heads=8,
        window_size=8,
        dropout_ratio=0.1,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    # Sliding window 256, stride 32, logits summed (the paper's protocol).
    test_cfg=dict(mode='slide', crop_size=(256, 256), stride=(32, 32)))
