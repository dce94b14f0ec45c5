# Synthetic ISPRS-like data with THREE modalities (RGB + DSM + NIR, 6
# classes) for the SGMA demo, written by
#   python tools/misc/make_synthetic_dataset.py data/synthetic_rdn --nir
# Same scenes as synthetic_mm.py plus a NIR band with its own class evidence
# (roofs vs roads, which RGB confuses). 32 training tiles of 128x128, 8 test
# tiles of 200x176 (eroded labels for evaluation).
dataset_type = 'SyntheticMMDataset'
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
crop_size = (128, 128)

data_preprocessor = dict(
    type='MultiModalSegDataPreProcessor',
    modalities=modalities,
    size=crop_size,
    pad_val=0,
    seg_pad_val=255)

# PackMultiModalSegInputs carries each sample's modality_presence (all True
# here; add RandomModalityDrop before it for training-time modality dropout).
train_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=[0.25, 0.25],
         direction=['horizontal', 'vertical']),
    dict(type='OpticalOnly', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackMultiModalSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
    dict(type='LoadAnnotations'),
    dict(type='PackMultiModalSegInputs'),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train',
            dsm_path='dsm_dir/train',
            nir_path='nir_dir/train',
            seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/test',
            dsm_path='dsm_dir/test',
            nir_path='nir_dir/test',
            seg_map_path='ann_eroded_dir/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='ISPRSMetric')
test_evaluator = val_evaluator
