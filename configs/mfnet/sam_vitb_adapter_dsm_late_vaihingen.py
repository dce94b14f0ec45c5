# Late-fusion baseline (MFNet Table IV, row 3): the standard Adapter per
# modality (adapter with skip after attention; MLP stage
# x + MLP(LN(x)) + 0.5 * A(LN(x))), no cross-modal mixing in the encoder;
# the modalities meet only in the DFM after it. SAM ViT-B, Vaihingen.
_base_ = ['./sam_vitb_mmadapter_vaihingen.py']
model = dict(
    backbone=dict(peft=[
        dict(type='AttnAdapter', targets='layers.*.attn', ratio=0.25),
        dict(type='FFNAdapter', targets='layers.*.ffn', ratio=0.25,
             scale=0.5),
    ]))
