# MoBaNet recipe: AdamW, 50 "epochs" x 1000 iterations = 50k iterations,
# 5-epoch (5000-iteration) linear warm-up, then cosine annealing to 0.
# lr 3e-4 and weight decay 0.01 as the paper states; no decay on 1-D
# parameters (biases, norms, layer scales, CPIA gamma / beta), as in the
# reference implementation, whose code used lr 2e-4 and weight decay 0.05:
# --cfg-options optim_wrapper.optimizer.lr=2e-4
# optim_wrapper.optimizer.weight_decay=0.05
# Batch size (12 for ViT-B, 6 for ViT-L) is set by the dataset config; the
# checkpoint interval (5000 by default) by default_runtime's default_hooks.
max_iters = 50000
warmup_iters = 5000
interval = 5000

optimizer = dict(
    type='AdamW', lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
