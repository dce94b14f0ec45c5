# MoBaNet with the SAM ViT-L image encoder (see mobanet_sam_vitb.py): taps
# after the global blocks 5, 11, 17, 23, 1024-channel DGFMs.
#
# Frozen weights: the official `sam_vit_l_0b3195.pth`
# (https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth),
# image encoder converted once with
#   python tools/model_converters/sam.py \
#       sam_vit_l_0b3195.pth pretrain/sam_vit_l_converted.pth
_base_ = ['./mobanet_sam_vitb.py']
model = dict(
    backbone=dict(
        arch='large',
        out_indices=[5, 11, 17, 23],
        frozen_checkpoint='pretrain/sam_vit_l_converted.pth'),
    neck=dict(in_channels=[1024, 1024, 1024, 1024]))
