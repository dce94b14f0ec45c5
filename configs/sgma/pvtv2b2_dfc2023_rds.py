# SGMA, PVT-v2-b2, DFC2023 track 2: RGB + DSM + SAR, building footprints.
_base_ = [
    '../_base_/models/sgma_pvtv2b2.py',
    '../_base_/datasets/dfc2023_rds.py',
    './_base_/sgma_recipe.py',
]
num_classes = 2
model = dict(
    neck=dict(num_classes=num_classes),
    decode_head=dict(num_classes=num_classes),
    test_cfg=dict(mode='whole'))
