# Paper Table IV, "+CPIA" (ViT-B, Potsdam): Base + CPIA before each stage
# (still mean fusion; no MCRM / auxiliary heads / hard-pixel loss).
# 3,990,400 trainable parameters (paper: 3.99M).
_base_ = ['../dinov2_vitb_potsdam.py']
model = dict(
    data_preprocessor=dict(batch_augments=None),
    neck=dict(fusion='mean'),
    auxiliary_head=None,
    aux_loss=None,
    aux_modalities=None)
