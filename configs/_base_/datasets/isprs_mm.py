# What the multimodal RGB + DSM data sets share (vaihingen_mm.py,
# potsdam_mm.py, synthetic_mm.py and mmhunan_mm.py inherit it and set the
# dataloaders' dataset type and data_root): RGB/IRRG + DSM, the converter's
# layout
# (img_dir / dsm_dir / ann_dir / ann_eroded_dir, each with train/ and test/),
# MoBaNet's recipe: 256x256 random crops and independent flips, evaluation
# with the ISPRS metrics on the eroded labels of whole test tiles (slide
# inference). Values captured at build time (`modalities` in the pipelines
# and the data preprocessor, `crop_size`) are redefined together by a child
# that changes them (see synthetic_mm.py).

# Optical = the 3 bands of the optical files in file order, 0-255,
# normalised with ImageNet mean/std (as MoBaNet does for DINOv2; use SAM's
# for SAM backbones). DSM: min-max per whole tile to [0, 1] by the loader
# (no-data -9999 / NaN -> 0). The modality spec is the channel layout of the
# stacked input, shared by the loader, the data preprocessor and the model.
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

# Models take it as model.data_preprocessor (pads training crops to
# crop_size; whole test tiles are left unpadded for slide inference).
data_preprocessor = dict(
    type='MultiModalSegDataPreProcessor',
    size=crop_size,
    pad_val=0,
    seg_pad_val=255)

# The random crop is drawn from the tile's size and only that window is read
# from each file (= LoadMultiModalImageFromFiles + LoadAnnotations +
# RandomCrop on the whole tile, without decoding it).
train_pipeline = [
    dict(
        type='LoadMultiModalRandomWindow',
        crop_size=crop_size),
    # horizontal and vertical flips, each independently at p = 0.5
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    # MFNet's paper also names random rotation (its authors' code, which
    # the MFNet configs follow, only flips); the option, corners padded
    # (image 0, label 255 = ignored):
    # dict(type='MultiModalRandomRotate', prob=0.5, degree=180,
    #      seg_pad_val=255),
    # mmseg-style extra augmentation (not in MoBaNet's recipe):
    # dict(type='RandomResize', scale=(512, 512), ratio_range=(0.5, 2.0),
    #      keep_ratio=True) needs the whole tile: replace the window loader
    #      with LoadMultiModalImageFromFiles + LoadAnnotations, then the
    #      resize, then RandomCrop(crop_size, cat_max_ratio=0.75); and
    # dict(type='OpticalOnly', transforms=[dict(type='PhotoMetricDistortion')])
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]

# Batch 12 (MoBaNet ViT-B); ViT-L configs use 6.
train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_prefix=dict(
            img_path='img_dir/train',
            dsm_path='dsm_dir/train',
            seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
# Eroded labels (boundaries ignored), the ISPRS evaluation protocol.
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        data_prefix=dict(
            img_path='img_dir/test',
            dsm_path='dsm_dir/test',
            seg_map_path='ann_eroded_dir/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='ISPRSMetric')
test_evaluator = val_evaluator
