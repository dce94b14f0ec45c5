# SGMA, PVT-v2-b2, ISPRS Potsdam R + D + N (5 classes, 24 / 14 tiles).
#   python tools/train.py configs/sgma/pvtv2b2_potsdam_rdn.py
#   # every modality subset, Average / Top-1 / Last-1 (the paper's Table I):
#   python tools/analysis_tools/eval_modality_subsets.py \
#       configs/sgma/pvtv2b2_potsdam_rdn.py CKPT
_base_ = [
    '../_base_/models/sgma_pvtv2b2.py',
    '../_base_/datasets/potsdam_rdn.py',
    './_base_/sgma_recipe.py',
]
