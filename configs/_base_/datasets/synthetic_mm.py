# Synthetic ISPRS-like multimodal demo data (RGB + DSM, 6 classes), written by
#   python tools/misc/make_synthetic_dataset.py data/synthetic_mm
# 32 training tiles of 128x128, 8 test tiles of 200x176 (whole-tile,
# sliding-window inference; eroded labels for evaluation).
dataset_type = 'SyntheticMMDataset'
data_root = 'data/synthetic_mm'

# The modality spec: channel layout of the stacked input, shared by the
# loader, the data preprocessor (mean / std per channel, in the units of the
# loaded arrays) and the model. Optical: raw 0-255 with ImageNet mean/std;
# DSM: min-max normalised per tile to [0, 1] by the loader, kept as is.
modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.0], std=[1.0]),
]
crop_size = (128, 128)

# Models take it as model.data_preprocessor (pads training crops to
# crop_size; whole test tiles are left unpadded for slide inference).
data_preprocessor = dict(
    type='MultiModalSegDataPreProcessor',
    modalities=modalities,
    size=crop_size,
    pad_val=0,
    seg_pad_val=255)

train_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    # horizontal and vertical flips, each independently at p = 0.5
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    # photometric distortion of the optical channels only; DSM untouched
    dict(type='OpticalOnly', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train',
            dsm_path='dsm_dir/train',
            seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
# Evaluation on eroded labels (boundary pixels = 255, ignored), as the
# ISPRS protocol does.
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
            seg_map_path='ann_eroded_dir/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='ISPRSMetric')
test_evaluator = val_evaluator
