# SGMA's training recipe (the paper's): AdamW lr 6e-5, eps 1e-8, weight
# decay 0.01; 200 epochs, the first 10 a linear warm-up from 10% of the lr,
# then poly decay (power 0.9) to 0. Validation every 10 epochs.
_base_ = ['../../_base_/default_runtime.py']
max_epochs = 200
warmup_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01),
    clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
log_processor = dict(by_epoch=True)
default_hooks = dict(
    logger=dict(log_metric_by_epoch=True),
    checkpoint=dict(by_epoch=True, interval=10))
