# MFNet, MMAdapter, frozen SAM ViT-H, ISPRS Vaihingen (IRRG + DSM), MFNet split.
#   python tools/model_converters/sam.py sam_vit_h_4b8939.pth \
#       pretrain/sam_vit_h_converted.pth
#   python tools/train.py configs/mfnet/sam_vith_mmadapter_vaihingen.py
_base_ = [
    '../_base_/models/mfnet_sam_vitb.py',
    './_base_/vaihingen_mfnet.py',
    './_base_/mfnet_recipe.py',
]
model = dict(
    backbone=dict(
        arch='huge',
        out_indices=[31],
        frozen_checkpoint='pretrain/sam_vit_h_converted.pth'))
train_dataloader = dict(batch_size=4)  # the paper's ViT-H batch
