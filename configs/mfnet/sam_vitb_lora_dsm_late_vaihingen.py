# Late-fusion baseline (MFNet Table IV, row 6): the standard LoRA per
# modality (rank 4, alpha 1: on q and v of qkv and on the MLP's lin1 /
# lin2, the reference's "standard LoRA" ablation), no cross-modal mixing in
# the encoder; the modalities meet only in the DFM after it. SAM ViT-B,
# Vaihingen.
_base_ = [
    './sam_vitb_mmadapter_vaihingen.py', '../_base_/peft/mfnet_lora.py'
]
model = dict(backbone=dict(peft={{_base_.lora_late_peft}}))
