# Synthetic ISPRS-like data with THREE modalities (RGB + DSM + NIR, 6
# classes) for the SGMA demo, written by
#   python tools/misc/make_synthetic_dataset.py data/synthetic_rdn --nir
# synthetic_mm.py's scenes, crops, loaders and evaluation, plus a NIR band
# with its own class evidence (roofs vs roads, which RGB confuses).
_base_ = ['./synthetic_mm.py']
data_root = 'data/synthetic_rdn'

# NIR: raw 0-255, mapped to [-1, 1] (mean 127.5, std 127.5).
modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.0], std=[1.0]),
    dict(name='nir', channels=1, kind='band', mean=[127.5], std=[127.5]),
]

# Every sample's presence (all True here) reaches its data sample; add
# RandomModalityDrop before the packing for training-time modality dropout.
train_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale={{_base_.crop_size}},
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}},
         cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=[0.25, 0.25],
         direction=['horizontal', 'vertical']),
    dict(type='OpticalOnly', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]

train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(nir_path='nir_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(nir_path='nir_dir/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
