# DELIVER (Zhang et al., CVPR 2023; github.com/jamycheung/DELIVER): RGB +
# Depth + Event + LiDAR of simulated driving scenes (five conditions, front
# view, 1042 x 1042), 25 classes; 3,983 train / 2,005 val / 1,897 test
# samples. Convert the published release with
#   python tools/dataset_converters/deliver.py data/DELIVER -o data/deliver
# Normalisation as the DELIVER / CMNeXt code: RGB with ImageNet mean / std,
# Depth, Event and LiDAR (3 channels each, 8-bit) divided by 255.
# Augmentation as theirs, at the data's own scale: random resize 0.5-2.0x
# around the image size, 1024 crop, flip, photometric (RGB only); the test
# at full resolution (theirs resizes 1042 -> 1024).
dataset_type = 'DELIVERDataset'
data_root = 'data/deliver'

modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    dict(name='depth', channels=3, kind='band', mean=[0.] * 3,
         std=[255.] * 3),
    dict(name='event', channels=3, kind='band', mean=[0.] * 3,
         std=[255.] * 3),
    dict(name='lidar', channels=3, kind='band', mean=[0.] * 3,
         std=[255.] * 3),
]
crop_size = (1024, 1024)

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
        scale=(1042, 1042),
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


# One epoch: the 3,983 training samples; batch 2 (the DELIVER code's per
# GPU): 1,992 iterations per epoch on one GPU.
train_samples = 3983
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train',
            depth_path='depth_dir/train',
            event_path='event_dir/train',
            lidar_path='lidar_dir/train',
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
            depth_path='depth_dir/val',
            event_path='event_dir/val',
            lidar_path='lidar_dir/val',
            seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU / mF1 over the 25 classes, OA
val_evaluator = dict(type='ISPRSMetric', foreground_classes=list(range(25)))
test_evaluator = val_evaluator
