# MFNet, MMAdapter, frozen SAM ViT-L, ISPRS Vaihingen (IRRG + DSM), MFNet split.
#   python tools/model_converters/sam.py sam_vit_l_0b3195.pth \
#       pretrain/sam_vit_l_converted.pth
#   python tools/train.py configs/mfnet/sam_vitl_mmadapter_vaihingen.py
_base_ = [
    '../_base_/models/mfnet_sam_vitb.py',
    './_base_/vaihingen_mfnet.py',
    './_base_/mfnet_recipe.py',
]
model = dict(
    backbone=dict(
        arch='large',
        out_indices=[23],
        frozen_checkpoint='pretrain/sam_vit_l_converted.pth'))
