# SGMA, PVT-v2-b2, DELIVER: RGB + Depth + Event + LiDAR (25 classes; 15
# modality subsets in eval_modality_subsets.py). 200 epochs of 3,983
# samples at batch 2: 398,400 iterations on one GPU.
_base_ = [
    '../_base_/models/sgma_pvtv2b2.py',
    '../_base_/datasets/deliver_rdel.py',
    './_base_/sgma_recipe.py',
]
num_classes = 25
model = dict(
    neck=dict(num_classes=num_classes),
    decode_head=dict(num_classes=num_classes),
    test_cfg=dict(mode='slide', crop_size=(1024, 1024), stride=(768, 768)))
