# MoBaNet's data on the synthetic demo data: the common dataset config,
# trained on the eroded labels (boundary pixels 255, ignored) as MoBaNet's
# reference code trains on the ISPRS `*_noBoundary` labels.
_base_ = ['../../../_base_/datasets/synthetic_mm.py']
train_dataloader = dict(
    dataset=dict(data_prefix=dict(seg_map_path='ann_eroded_dir/train')))
