# MMHunan (Sentinel-2 RGB + DEM, 256 x 256 patches, 7 classes) in its
# released layout (see mmrsfusion/datasets/mmhunan.py): images_png/,
# dsm_pngs/, masks_png/ under data/mmhunan, plus train.txt / test.txt
# listing the patch IDs of the split (MFNet: 450 / 50; the ID lists are in
# the MFNet code's utils.py).
dataset_type = 'MMHunanDataset'
data_root = 'data/mmhunan'

modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.0], std=[1.0]),
]
crop_size = (256, 256)

data_preprocessor = dict(
    type='MultiModalSegDataPreProcessor',
    modalities=modalities,
    size=crop_size,
    pad_val=0,
    seg_pad_val=255)

train_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=[0.25, 0.25],
         direction=['horizontal', 'vertical']),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
data_prefix = dict(
    img_path='images_png', dsm_path='dsm_pngs', seg_map_path='masks_png')
train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        data_prefix=data_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='test.txt',
        data_prefix=data_prefix,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mFscore'])
test_evaluator = val_evaluator
