# Optical-only baseline: the standard Adapter (s = 0.5) on the IRRG stream
# alone (one stream; DFM with one modality: pyramid + SE per level, no
# fusion), SAM ViT-B, Vaihingen, MFNet split and recipe.
_base_ = ['./sam_vitb_adapter_dsm_late_vaihingen.py']
modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
]
train_pipeline = [
    dict(
        type='LoadMultiModalRandomWindow',
        crop_size={{_base_.crop_size}}),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadMultiModalImageFromFiles'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
