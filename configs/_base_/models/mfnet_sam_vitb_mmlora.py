# MFNet, SAM ViT-B, MMLoRA instead of MMAdapter: rank-4 LoRA on q and v of every block's qkv,
# per modality (alpha 1: scaled by 1/4), and on the MLP's lin1 / lin2 per
# modality, mixed across the modalities by learnable lambdas (init 0.5),
# unscaled (alpha = rank), as the reference. All B matrices start at zero:
# the model starts as the frozen encoder. ViT-B: 1,032,240 trainable in the
# encoder.
_base_ = ['./mfnet_sam_vitb.py']
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
