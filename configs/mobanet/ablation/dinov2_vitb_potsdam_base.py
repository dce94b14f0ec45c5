# Paper Table IV, "Base" (ViT-B, Potsdam): the frozen shared DINOv2 ViT-B with
# the trainable DSM patch embedding, mean fusion ((X + Y) / 2) instead of
# DGFM, no CPIA, no MCRM / auxiliary heads / hard-pixel loss.
# 1,908,352 trainable parameters (paper: 1.91M).
_base_ = ['../dinov2_vitb_potsdam.py']
model = dict(
    data_preprocessor=dict(batch_augments=None),
    backbone=dict(stage_adapter=None),
    neck=dict(fusion='mean'),
    auxiliary_head=None,
    aux_loss=None,
    aux_modalities=None)
