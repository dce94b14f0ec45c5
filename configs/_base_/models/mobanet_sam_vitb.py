# MoBaNet with the SAM ViT-B image encoder (patch 16, window 14, global
# attention in blocks 2, 5, 8, 11, relative positions) as the frozen shared
# backbone. Unlike the reference implementation (which feeds SAM's 256-channel
# neck output to a ViTDet-style pyramid, drops the pretrained pos-embed and
# rel-pos tables by a shape mismatch and does not normalise RGB), this uses
# stage taps like the DINOv2 path: the raw block outputs after the global
# blocks 2, 5, 8, 11 (768 channels), the pretrained pos-embed resized
# bicubically to the token grid (mmpretrain's size=(h, w) rule; SAM's own
# code never resizes it) and the rel-pos tables interpolated.
#
# SAM's pixel mean / std (123.675, 116.28, 103.53 / 58.395, 57.12, 57.375 on
# 0-255) are the ImageNet statistics the dataset configs already use.
#
# Frozen weights: the official `sam_vit_b_01ec64.pth`
# (https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth),
# image encoder converted once with
#   python tools/model_converters/sam.py \
#       sam_vit_b_01ec64.pth pretrain/sam_vit_b_converted.pth
_base_ = ['./mobanet_dinov2_vitb.py']
model = dict(
    backbone=dict(
        family='sam',
        arch='base',
        out_indices=[2, 5, 8, 11],
        tap_transform='none',
        pos_embed_resize='size',
        frozen_checkpoint='pretrain/sam_vit_b_converted.pth'))
