# Synthetic ISPRS-like multimodal demo data (RGB + DSM, 6 classes), written by
#   python tools/misc/make_synthetic_dataset.py data/synthetic_mm
# 32 training tiles of 128x128, 8 test tiles of 200x176 (whole-tile,
# sliding-window inference; eroded labels for evaluation). The ISPRS layout,
# modalities and evaluation of isprs_mm.py; smaller crops, tiles read whole
# (they are small), scale and photometric augmentation.
_base_ = ['./isprs_mm.py']
dataset_type = 'SyntheticMMDataset'
data_root = 'data/synthetic_mm'

crop_size = (128, 128)
data_preprocessor = dict(size=crop_size)

train_pipeline = [
    dict(
        type='LoadMultiModalImageFromFiles'),
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

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
