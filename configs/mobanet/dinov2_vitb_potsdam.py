# MoBaNet, DINOv2 ViT-B/14, ISPRS Potsdam (RGB + DSM): the full model of the
# paper's Table IV (CPIA + DGFM + MCRM with aux heads and hard-pixel loss).
# 6,179,456 trainable parameters.
#   python tools/model_converters/dinov2.py dinov2_vitb14_pretrain.pth \
#       pretrain/dinov2_vitb14_converted.pth
#   python tools/train.py configs/mobanet/dinov2_vitb_potsdam.py
#   python tools/test.py configs/mobanet/dinov2_vitb_potsdam.py CKPT
#   # RGB only (DSM zeroed after normalisation):
#   python tools/test.py configs/mobanet/dinov2_vitb_potsdam.py CKPT \
#       --cfg-options model.absent="['dsm']"
_base_ = [
    '../_base_/models/mobanet_dinov2_vitb.py',
    './_base_/datasets/potsdam_mm.py',
    './_base_/mobanet_recipe.py',
]
