# Early-fusion baseline on the synthetic demo data (RGB + DSM stacked into one
# 4-channel tensor for ResNetV1c-18 + UPerHead), trained from scratch on CPU.
#
#   python tools/misc/make_synthetic_dataset.py data/synthetic_mm
#   python tools/train.py configs/baselines/early_fusion_r18_synthetic.py
#   python tools/test.py configs/baselines/early_fusion_r18_synthetic.py \
#       work_dirs/early_fusion_r18_synthetic/iter_600.pth
#
# Test: whole 200x176 tiles, sliding window = the 128 training crop with
# stride 64 (windows overlap, the last ones flush with the border), scored
# with the ISPRS protocol (ISPRSMetric on the eroded labels).
_base_ = [
    '../_base_/models/early_fusion_r18.py',
    '../_base_/datasets/synthetic_mm.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_600it_adamw_cpu.py',
]
crop_size = {{_base_.crop_size}}
# plain BN: single-process / CPU (SyncBN needs GPUs)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(64, 64)))

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval={{_base_.max_iters}}, max_keep_ckpts=1))
