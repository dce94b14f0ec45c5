# MFNet, MMLoRA, frozen SAM ViT-H, ISPRS Potsdam (RGB + nDSM), MFNet split.
# Trainable in the encoder: 4,587,648.
#   python tools/model_converters/sam.py sam_vit_h_4b8939.pth \
#       pretrain/sam_vit_h_converted.pth
#   python tools/train.py configs/mfnet/sam_vith_mmlora_potsdam.py
_base_ = [
    '../_base_/models/mfnet_sam_vitb_mmlora.py',
    './_base_/potsdam_mfnet.py',
    './_base_/mfnet_recipe.py',
]
model = dict(
    backbone=dict(
        arch='huge',
        out_indices=[31],
        frozen_checkpoint='pretrain/sam_vit_h_converted.pth'))
train_dataloader = dict(batch_size=4)  # the paper's ViT-H batch
