# Optical-only baseline of the MFNet CPU demo with the standard LoRA (rank
# 4, alpha 1; q, v, lin1, lin2); see demo_tinysam_adapter_rgb_synthetic.py.
_base_ = [
    './demo_tinysam_adapter_rgb_synthetic.py', '../_base_/peft/mfnet_lora.py'
]
model = dict(backbone=dict(peft={{_base_.lora_peft}}))
