# MoBaNet with a frozen SAM ViT-L image encoder, ISPRS Vaihingen (IRRG + DSM),
# batch 6.
#   python tools/model_converters/sam.py sam_vit_l_0b3195.pth \
#       pretrain/sam_vit_l_converted.pth
#   python tools/train.py configs/mobanet/sam_vitl_vaihingen.py
_base_ = [
    '../_base_/models/mobanet_sam_vitl.py',
    './_base_/datasets/vaihingen_mm.py',
    './_base_/mobanet_recipe.py',
]
train_dataloader = dict(batch_size=6)
