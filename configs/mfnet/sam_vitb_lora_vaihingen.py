# Optical-only baseline: the standard LoRA (rank 4, alpha 1; q, v, lin1,
# lin2) on the IRRG stream alone, SAM ViT-B, Vaihingen, MFNet split and
# recipe.
_base_ = ['./sam_vitb_adapter_vaihingen.py']
model = dict(
    backbone=dict(peft=[
        dict(
            type='LoRALinear',
            targets='layers.*.attn.qkv',
            rank=4,
            alpha=1,
            enable=(True, False, True)),
        dict(
            type='LoRALinear',
            targets=['layers.*.ffn.layers.0.0', 'layers.*.ffn.layers.1'],
            rank=4,
            alpha=1),
    ]))
