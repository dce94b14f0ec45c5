# MFNet's training recipe: SGD lr 0.01, momentum 0.9, weight decay 5e-4,
# 50 "epochs" x 1000 iterations, lr x0.1 at epochs 25, 35 and 45, plain
# cross-entropy; batch 10 (4 for ViT-H) and 256x256 crops + flips from the
# dataset configs.
# Checkpoints hold only the trained weights (every tensor with
# requires_grad, including the PEFT wrappers inside the frozen encoder) plus
# optimizer / scheduler state: TrainableCheckpointHook drops the frozen
# encoder and re-attaches it from `frozen_checkpoint` on loading.
_base_ = ['../../_base_/default_runtime.py']
max_iters = 50000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[25000, 35000, 45000],
        gamma=0.1)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='TrainableCheckpointHook')]
default_hooks = dict(checkpoint=dict(published_keys=['meta', 'state_dict']))
