# MFNet, MMAdapter, frozen SAM ViT-B, ISPRS Vaihingen (IRRG + DSM), MFNet split.
# Trainable in the encoder: 14,201,880.
#   python tools/model_converters/sam.py sam_vit_b_01ec64.pth \
#       pretrain/sam_vit_b_converted.pth
#   python tools/train.py configs/mfnet/sam_vitb_mmadapter_vaihingen.py
_base_ = [
    '../_base_/models/mfnet_sam_vitb.py',
    './_base_/vaihingen_mfnet.py',
    './_base_/mfnet_recipe.py',
]
