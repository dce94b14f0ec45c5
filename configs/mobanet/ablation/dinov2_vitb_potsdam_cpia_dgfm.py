# Paper Table IV, "+CPIA +DGFM" (ViT-B, Potsdam): CPIA and DGFM fusion; no
# MCRM / auxiliary heads / hard-pixel loss. The table's last row ("+MCRM",
# 6.18M) is the full model, configs/mobanet/dinov2_vitb_potsdam.py.
# 4,995,712 trainable parameters (paper: 5.00M).
_base_ = ['../dinov2_vitb_potsdam.py']
model = dict(
    data_preprocessor=dict(batch_augments=None),
    auxiliary_head=None,
    aux_loss=None,
    aux_modalities=None)
