# MoBaNet with a frozen SAM ViT-B image encoder, ISPRS Vaihingen (IRRG + DSM),
# batch 12. See configs/_base_/models/mobanet_sam_vitb.py for how it differs
# from the reference's SAM path.
#   python tools/model_converters/sam.py sam_vit_b_01ec64.pth \
#       pretrain/sam_vit_b_converted.pth
#   python tools/train.py configs/mobanet/sam_vitb_vaihingen.py
_base_ = [
    '../_base_/models/mobanet_sam_vitb.py',
    './_base_/datasets/vaihingen_mm.py',
    './_base_/mobanet_recipe.py',
]
