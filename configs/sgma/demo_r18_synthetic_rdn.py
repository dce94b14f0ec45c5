# SGMA demo on the CPU: the full method (shared encoder, SGF with class
# prototypes / Spatial and Robustness Perceptrons, MAS, 2 L_SGF + L_MAS) with
# a small ResNet-18 (16 base channels, random init) on the 3-modality
# synthetic data (RGB + DSM + NIR).
#   python tools/misc/make_synthetic_dataset.py data/synthetic_rdn --nir
#   python tools/train.py configs/sgma/demo_r18_synthetic_rdn.py \
#       --work-dir work_dirs/sgma_demo
#   python tools/analysis_tools/eval_modality_subsets.py \
#       configs/sgma/demo_r18_synthetic_rdn.py work_dirs/sgma_demo/iter_300.pth
# Without MAS (the ablation): --cfg-options model.mas=False
_base_ = [
    '../_base_/models/sgma_pvtv2b2.py',
    '../_base_/datasets/synthetic_rdn.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_600it_adamw_cpu.py',
]
num_classes = 6
in_channels = [16, 32, 64, 128]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        backbone=dict(
            _delete_=True,
            type='ResNetV1c',
            depth=18,
            base_channels=16,
            stem_channels=16,
            out_indices=(0, 1, 2, 3),
            norm_cfg=norm_cfg)),
    neck=dict(in_channels=in_channels, num_classes=num_classes),
    decode_head=dict(
        in_channels=in_channels,
        channels=32,
        num_classes=num_classes,
        norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))

# 300 iterations of batch 8 (AdamW 4e-3, 30-iteration warm-up, cosine):
# schedule_600it_adamw_cpu.py shortened, SGF's per-pixel attention being
# the costly part on a CPU.
max_iters = 300
warmup_iters = 30
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
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
val_cfg = None
val_dataloader = None
val_evaluator = None

randomness = dict(seed=42)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(
        interval=max_iters, max_keep_ckpts=1, save_best=None))
