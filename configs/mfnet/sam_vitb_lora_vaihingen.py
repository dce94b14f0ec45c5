# Optical-only baseline: the standard LoRA (rank 4, alpha 1; q, v, lin1,
# lin2) on the IRRG stream alone, SAM ViT-B, Vaihingen, MFNet split and
# recipe.
_base_ = [
    './sam_vitb_adapter_vaihingen.py', '../_base_/peft/mfnet_lora.py'
]
model = dict(backbone=dict(peft={{_base_.lora_peft}}))
