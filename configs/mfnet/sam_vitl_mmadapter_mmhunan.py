# MFNet, MMAdapter, frozen SAM ViT-L, MMHunan (Sentinel-2 RGB + DEM, 7
# classes), the paper's recipe; whole 256 x 256 patches at test time.
#   python tools/model_converters/sam.py sam_vit_l_0b3195.pth \
#       pretrain/sam_vit_l_converted.pth
#   python tools/train.py configs/mfnet/sam_vitl_mmadapter_mmhunan.py
_base_ = [
    '../_base_/models/mfnet_sam_vitb.py',
    '../_base_/datasets/mmhunan_mm.py',
    './_base_/mfnet_recipe.py',
]
model = dict(
    backbone=dict(
        arch='large',
        out_indices=[23],
        frozen_checkpoint='pretrain/sam_vit_l_converted.pth'),
    decode_head=dict(num_classes=7),
    test_cfg=dict(_delete_=True, mode='whole'))
