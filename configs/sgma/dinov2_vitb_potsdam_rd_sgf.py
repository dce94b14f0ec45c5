# SGF as the neck of the frozen DINOv2 ViT-B/14 multi-stream backbone
# (RGB + DSM, Potsdam six classes): MoBaNet's backbone with SGMA's fusion,
# MAS and modality-presence mask; UperNet head on the four fused taps;
# potsdam_mm.py's data and pipelines (random 256 windows at full resolution).
#   python tools/model_converters/dinov2.py dinov2_vitb14_pretrain.pth \
#       pretrain/dinov2_vitb14_converted.pth
_base_ = [
    '../_base_/models/mobanet_dinov2_vitb.py',
    '../_base_/datasets/potsdam_mm.py',
    '../mobanet/_base_/mobanet_recipe.py',
]
num_classes = 6
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='SGMAEncoderDecoder',
    neck=dict(
        _delete_=True,
        type='SGFNeck',
        in_channels=[768] * 4,
        num_classes=num_classes,
        sp_heads=8,
        rp_heads=4),
    decode_head=dict(in_channels=[768] * 4),
    auxiliary_head=None,
    mas=True,
    loss_weights=dict(sgf=2.0, mas=1.0))
