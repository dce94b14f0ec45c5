# ISPRS Potsdam, RGB + DSM by default, official split, converted with
#   python tools/dataset_converters/potsdam.py RAW_PATH -o data/potsdam
# (default --optical RGBIR: 4-band R, G, B, IR files, from which the dataset
# picks the bands; --elevation dsm, or ndsm / both).
#
# Options:
# - IRRG: optical_bands='IRRG' in the three datasets below (same 3-channel
#   spec; mean/std in IR, R, G order).
# - RGBIR: optical_bands='RGBIR', the optical modality gets channels=4 and a
#   4th mean/std value (e.g. mean 100.0, std 50.0 for IR, or measured), and
#   photometric transforms need OpticalOnly(..., channels=[0, 1, 2]).
# - nDSM instead of DSM: elevation='ndsm' in the datasets (reads ndsm_dir,
#   8-bit PNGs, still min-max normalised per tile by the loader; convert
#   with --elevation ndsm or both).
dataset_type = 'PotsdamMMDataset'
data_root = 'data/potsdam'
optical_bands = 'RGB'
elevation = 'dsm'

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

# The random crop is drawn from the tile's size and only that window is read
# from each file (= LoadMultiModalImageFromFiles + LoadAnnotations +
# RandomCrop on the whole tile, without decoding it).
train_pipeline = [
    dict(
        type='LoadMultiModalRandomWindow',
        modalities=modalities,
        crop_size=crop_size),
    # horizontal and vertical flips, each independently at p = 0.5
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
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
        type=dataset_type,
        data_root=data_root,
        optical_bands=optical_bands,
        elevation=elevation,
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
        type=dataset_type,
        data_root=data_root,
        optical_bands=optical_bands,
        elevation=elevation,
        data_prefix=dict(
            img_path='img_dir/test',
            dsm_path='dsm_dir/test',
            seg_map_path='ann_eroded_dir/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='ISPRSMetric')
test_evaluator = val_evaluator
