# MoBaNet, DINOv2 ViT-L/14, ISPRS Potsdam (RGB + DSM), batch 6 (paper:
# OA 92.23 / mF1 93.53 / mIoU 88.03). 8,981,376 trainable parameters.
#   python tools/model_converters/dinov2.py dinov2_vitl14_pretrain.pth \
#       pretrain/dinov2_vitl14_converted.pth
#   python tools/train.py configs/mobanet/dinov2_vitl_potsdam.py
_base_ = [
    '../_base_/models/mobanet_dinov2_vitl.py',
    './_base_/datasets/potsdam_mm.py',
    './_base_/mobanet_recipe.py',
]
train_dataloader = dict(batch_size=6)
