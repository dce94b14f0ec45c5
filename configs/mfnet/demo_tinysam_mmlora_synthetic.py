# The MFNet CPU demo with MMLoRA instead of MMAdapter (rank 4: q, v per
# modality; MLP lin1 / lin2 mixed across the modalities); see
# demo_tinysam_mmadapter_synthetic.py.
_base_ = [
    './demo_tinysam_mmadapter_synthetic.py', '../_base_/peft/mfnet_lora.py'
]
model = dict(backbone=dict(peft={{_base_.mmlora_peft}}))
