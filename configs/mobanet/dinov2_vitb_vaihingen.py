# MoBaNet, DINOv2 ViT-B/14, ISPRS Vaihingen (IRRG + DSM), batch 12.
# 6,179,456 trainable parameters.
#   python tools/model_converters/dinov2.py dinov2_vitb14_pretrain.pth \
#       pretrain/dinov2_vitb14_converted.pth
#   python tools/train.py configs/mobanet/dinov2_vitb_vaihingen.py
_base_ = [
    '../_base_/models/mobanet_dinov2_vitb.py',
    './_base_/datasets/vaihingen_mm.py',
    './_base_/mobanet_recipe.py',
]
