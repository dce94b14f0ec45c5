# Optical-only baseline of the MFNet CPU demo: the standard Adapter (s = 0.5)
# on the RGB stream alone (DFM with one modality), same tiny encoder, data
# and schedule as demo_tinysam_mmadapter_synthetic.py.
_base_ = ['./demo_tinysam_mmadapter_synthetic.py']
modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
]
crop_size = (128, 128)
train_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='OpticalOnly', transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
model = dict(
    backbone=dict(peft=[
        dict(type='AttnAdapter', targets='layers.*.attn', ratio=0.25),
        dict(type='FFNAdapter', targets='layers.*.ffn', ratio=0.25,
             scale=0.5),
    ]))
