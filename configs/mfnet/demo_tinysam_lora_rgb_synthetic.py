# Optical-only baseline of the MFNet CPU demo with the standard LoRA (rank
# 4, alpha 1; q, v, lin1, lin2); see demo_tinysam_adapter_rgb_synthetic.py.
_base_ = ['./demo_tinysam_adapter_rgb_synthetic.py']
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
