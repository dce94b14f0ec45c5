# MoBaNet (reference-compatible form), DINOv2 ViT-L/14 backbone: as
# mobanet_dinov2_vitb.py with ViT-L, stage taps after blocks 5, 11, 17, 23 and
# 1024-channel DGFMs (C' = 128).
# Trainable parameters (6 classes): 8,981,376.
#
# Frozen weights: the official `dinov2_vitl14_pretrain.pth`
# (https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth),
# converted once with
#   python tools/model_converters/dinov2.py \
#       dinov2_vitl14_pretrain.pth pretrain/dinov2_vitl14_converted.pth
_base_ = ['./mobanet_dinov2_vitb.py']
model = dict(
    backbone=dict(
        arch='large',
        out_indices=[5, 11, 17, 23],
        frozen_checkpoint='pretrain/dinov2_vitl14_converted.pth'),
    neck=dict(in_channels=[1024, 1024, 1024, 1024]))
