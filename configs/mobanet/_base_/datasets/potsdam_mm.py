# MoBaNet's data on ISPRS Potsdam: the common dataset config, trained on
# the eroded labels (boundary pixels 255, ignored) as the reference code does
# (it reads the ISPRS `*_noBoundary` label files for training too).
_base_ = ['../../../_base_/datasets/potsdam_mm.py']
train_dataloader = dict(
    dataset=dict(data_prefix=dict(seg_map_path='ann_eroded_dir/train')))
