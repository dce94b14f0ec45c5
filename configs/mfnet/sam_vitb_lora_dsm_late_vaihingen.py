# Late-fusion baseline (MFNet Table IV, row 6): the standard LoRA per
# modality (rank 4, alpha 1: on q and v of qkv and on the MLP's lin1 /
# lin2, the reference's "standard LoRA" ablation), no cross-modal mixing in
# the encoder; the modalities meet only in the DFM after it. SAM ViT-B,
# Vaihingen.
_base_ = ['./sam_vitb_mmadapter_vaihingen.py']
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
        # the frozen attention and MLP one modality at a time, as the
        # authors run them: same values, faster on CPU
        dict(type='PerModality', targets=['layers.*.attn', 'layers.*.ffn']),
    ]))
