# A CPU-sized schedule for the synthetic demo data: 600 iterations of AdamW
# (lr 4e-3: the heads and adapters train from scratch; 1e-3 leaves the small
# classes unlearnt in 600 iterations), 60-iteration linear warm-up, then
# cosine annealing. Validation once, at the end. A few minutes on 2 cores;
# real data uses schedule_50k_adamw_cosine.py.
max_iters = 600
warmup_iters = 60

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=4e-3, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=None,
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-2,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=1e-5,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
