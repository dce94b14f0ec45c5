# MFNet, MMLoRA, frozen SAM ViT-B, ISPRS Vaihingen (IRRG + DSM), MFNet split.
# Trainable in the encoder: 1,032,240.
#   python tools/model_converters/sam.py sam_vit_b_01ec64.pth \
#       pretrain/sam_vit_b_converted.pth
#   python tools/train.py configs/mfnet/sam_vitb_mmlora_vaihingen.py
_base_ = [
    '../_base_/models/mfnet_sam_vitb_mmlora.py',
    './_base_/vaihingen_mfnet.py',
    './_base_/mfnet_recipe.py',
]
