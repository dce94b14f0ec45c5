# MFNet's LoRA family as PEFT injections (mmrsfusion/models/peft), shared by
# the SAM ViT-B configs and the CPU demos. Rank 4; every B starts at zero,
# so a model starts as the frozen encoder.
_lora_qv = dict(
    type='LoRALinear',
    targets='layers.*.attn.qkv',
    rank=4,
    alpha=1,  # scaled by 1/4, as the reference
    enable=(True, False, True))  # q and v of qkv
_lora_mlp = dict(
    type='LoRALinear',
    targets=['layers.*.ffn.layers.0.0', 'layers.*.ffn.layers.1'],
    rank=4)
# SAM's attention (with the q/v LoRA inside) one modality at a time, as the
# authors run it: same values, faster on CPU (listed after the LoRA, whose
# target names the module inside)
_per_modality_attn = dict(type='PerModality', targets='layers.*.attn')

# LoRA, one stream: q, v, lin1, lin2 (alpha 1)
lora_peft = [_lora_qv, dict(_lora_mlp, alpha=1)]
# LoRA per modality, no cross-modal mixing (late fusion): the frozen
# attention and MLP one modality at a time
lora_late_peft = lora_peft + [
    dict(_per_modality_attn, targets=['layers.*.attn', 'layers.*.ffn'])
]
# MMLoRA: q, v per modality; lin1 / lin2 mixed across the two modalities by
# learnable lambdas (init 0.5), unscaled (alpha = rank), as the reference
mmlora_peft = [
    _lora_qv,
    dict(_lora_mlp, alpha=4, cross_modal=True),
    _per_modality_attn,
]
del _lora_qv, _lora_mlp, _per_modality_attn  # keep only the lists
