_base_ = [
    '../_base_/models/early_fusion_r18.py',
    '../_base_/datasets/synthetic_mm.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_cpu_demo.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=(128, 128), stride=(64, 64)))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval={{_base_.max_iters}}, max_keep_ckpts=1))
