# MMHunan (Sentinel-2 RGB + DEM, 256 x 256 patches, 7 classes) in its
# released layout (see mmrsfusion/datasets/mmhunan.py): images_png/,
# dsm_pngs/, masks_png/ under data/mmhunan, plus train.txt / test.txt
# listing the patch IDs of the split (MFNet: 450 / 50; the ID lists are in
# the MFNet code's utils.py). The modalities and flips of isprs_mm.py;
# patches read whole (they are the crop size), mIoU / F1 over all 7 classes.
_base_ = ['./isprs_mm.py']
dataset_type = 'MMHunanDataset'
data_root = 'data/mmhunan'

train_pipeline = [
    dict(
        type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    # horizontal and vertical flips, each independently at p = 0.5
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
# replaces the ISPRS folders (not merged into them)
data_prefix = dict(
    _delete_=True,
    img_path='images_png',
    dsm_path='dsm_pngs',
    seg_map_path='masks_png')
train_dataloader = dict(
    batch_size=10,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        data_prefix=data_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='test.txt',
        data_prefix=data_prefix))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True, type='IoUMetric', iou_metrics=['mIoU', 'mFscore'])
test_evaluator = val_evaluator
