# MFNet, SAM ViT-B, MMLoRA instead of MMAdapter: rank-4 LoRA on q and v of every block's qkv,
# per modality (alpha 1: scaled by 1/4), and on the MLP's lin1 / lin2 per
# modality, mixed across the modalities by learnable lambdas (init 0.5),
# unscaled (alpha = rank), as the reference. All B matrices start at zero:
# the model starts as the frozen encoder. ViT-B: 1,032,240 trainable in the
# encoder.
_base_ = ['./mfnet_sam_vitb.py', '../peft/mfnet_lora.py']
model = dict(backbone=dict(peft={{_base_.mmlora_peft}}))
