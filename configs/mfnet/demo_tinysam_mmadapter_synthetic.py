# MFNet demo on the CPU: the whole method (shared frozen SAM-style encoder
# with MMAdapter injected into every block, the DSM through the shared
# frozen patch embedding, SAM neck, DFM, UNetFormer decoder, sliding-window
# test) with a tiny SAM-style ViT (width 64, depth 4, patch 8, window 4,
# global attention in blocks 1 and 3) on the synthetic RGB + DSM data.
#
# No pretrained weights can be downloaded here: the frozen encoder keeps
# its seeded random initialisation (frozen_checkpoint=None; the checkpoint
# hook then keeps those frozen weights in the checkpoints).
#   python tools/misc/make_synthetic_dataset.py data/synthetic_mm
#   python tools/train.py configs/mfnet/demo_tinysam_mmadapter_synthetic.py \
#       --work-dir work_dirs/mfnet_demo_mmadapter
#   python tools/test.py configs/mfnet/demo_tinysam_mmadapter_synthetic.py \
#       work_dirs/mfnet_demo_mmadapter/iter_300.pth
_base_ = [
    '../_base_/models/mfnet_sam_vitb.py',
    '../_base_/datasets/synthetic_mm.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_600it_adamw_cpu.py',
]
width = 64
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=width,
            num_layers=4,
            num_heads=4,
            feedforward_channels=4 * width,
            global_attn_indexes=[1, 3]),
        out_indices=[3],
        # patch 8 (the cars are 6-9 pixels long): a 16x16 grid for 128
        # crops; the pos-embed grid belongs to 128 inputs
        encoder_cfg=dict(
            img_size=128, patch_size=8, window_size=4, out_channels=64),
        frozen_checkpoint=None),
    neck=dict(in_channels=64),
    # a light decoder (16 channels, 2 heads, window 4) for the CPU
    decode_head=dict(
        in_channels=[64] * 4,
        channels=16,
        num_heads=2,
        window_size=4,
        norm_cfg=dict(type='BN', requires_grad=True)),
    # whole 200 x 176 test tiles: 6 windows of 128, stride 64
    test_cfg=dict(mode='slide', crop_size=(128, 128), stride=(64, 64)))
train_dataloader = dict(batch_size=4)
# 300 iterations (about 12 minutes on a loaded 2-core machine)
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0,
         end=30),
    dict(type='CosineAnnealingLR', T_max=max_iters - 30, eta_min=1e-5,
         by_epoch=False, begin=30, end=max_iters),
]
val_cfg = None
val_dataloader = None
val_evaluator = None
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(
        interval=max_iters, max_keep_ckpts=1, save_best=None))
custom_hooks = [dict(type='TrainableCheckpointHook')]
