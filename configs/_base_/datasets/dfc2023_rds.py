# IEEE GRSS DFC2023 track 2 as SGMA uses it: RGB + DSM + SAR, two classes
# (background, building), 1,419 train / 354 val images, converted with
#   python tools/dataset_converters/dfc2023.py RAW -o data/dfc2023 \
#       --annotations RAW/<buildings annotation>.json
# The converter prints the training mean / std of each modality (also in
# data/dfc2023/conversion.json): put the RGB and SAR ones below. The values
# here assume 8-bit RGB (ImageNet statistics) and 8-bit SAR (mapped to
# [-1, 1]); the DSM is min-max normalised per image by the loader.
dataset_type = 'DFC2023MMDataset'
data_root = 'data/dfc2023'

modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.0], std=[1.0]),
    dict(name='sar', channels=1, kind='band', mean=[127.5], std=[127.5]),
]
crop_size = (512, 512)

data_preprocessor = dict(
    type='MultiModalSegDataPreProcessor',
    size=crop_size,
    pad_val=0,
    seg_pad_val=255)

train_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(512, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='OpticalOnly', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]

# One epoch: the 1,419 training images (200 epochs at batch 8: 178
# iterations per epoch, 35,600 in all).
train_samples = 1419
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train',
            dsm_path='dsm_dir/train',
            sar_path='sar_dir/train',
            seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/val',
            dsm_path='dsm_dir/val',
            sar_path='sar_dir/val',
            seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# mIoU / mF1 over both classes, OA
val_evaluator = dict(type='ISPRSMetric', foreground_classes=[0, 1])
test_evaluator = val_evaluator
