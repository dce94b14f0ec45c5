# MoBaNet, DINOv2 ViT-L/14, ISPRS Vaihingen (IRRG + DSM), batch 6: the
# paper's main result (OA 91.90 / mF1 91.39 / mIoU 84.37).
# 8,981,376 trainable parameters.
#   python tools/model_converters/dinov2.py dinov2_vitl14_pretrain.pth \
#       pretrain/dinov2_vitl14_converted.pth
#   python tools/train.py configs/mobanet/dinov2_vitl_vaihingen.py
#   python tools/test.py configs/mobanet/dinov2_vitl_vaihingen.py CKPT
_base_ = [
    '../_base_/models/mobanet_dinov2_vitl.py',
    './_base_/datasets/vaihingen_mm.py',
    './_base_/mobanet_recipe.py',
]
train_dataloader = dict(batch_size=6)
