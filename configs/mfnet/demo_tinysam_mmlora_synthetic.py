# The MFNet CPU demo with MMLoRA instead of MMAdapter (rank 4: q, v per
# modality; MLP lin1 / lin2 mixed across the modalities); see
# demo_tinysam_mmadapter_synthetic.py.
_base_ = ['./demo_tinysam_mmadapter_synthetic.py']
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
            alpha=4,
            cross_modal=True),
        # SAM's attention (with the q/v LoRA inside) one modality at a time,
        # as the authors run it: same values, faster on CPU
        dict(type='PerModality', targets='layers.*.attn'),
    ]))
