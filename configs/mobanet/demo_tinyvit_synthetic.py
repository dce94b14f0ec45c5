# MoBaNet demo on the CPU: the full method (shared frozen ViT, CPIA, DGFM,
# UperNet, MCRM + aux heads + hard-pixel loss, sliding-window test) with a
# tiny DINOv2-style ViT (width 64, depth 4, 4 heads, patch 8) on the synthetic
# RGB + DSM data. Trains in a few minutes on 2 cores.
#
# No pretrained weights can be downloaded here, so the "pretrained" frozen
# ViT is random (seeded), written with the official DINOv2 key names and
# converted like a real one:
#   python tools/misc/make_synthetic_dataset.py data/synthetic_mm
#   python tools/misc/make_tiny_vit_checkpoint.py \
#       pretrain/dinov2_tiny_demo_pretrain.pth
#   python tools/model_converters/dinov2.py \
#       pretrain/dinov2_tiny_demo_pretrain.pth \
#       pretrain/dinov2_tiny_demo_converted.pth
#   python tools/train.py configs/mobanet/demo_tinyvit_synthetic.py \
#       --work-dir work_dirs/mobanet_demo
#   python tools/test.py configs/mobanet/demo_tinyvit_synthetic.py \
#       work_dirs/mobanet_demo/iter_600.pth --work-dir work_dirs/mobanet_demo
#   # RGB only at test time (DSM zeroed after normalisation):
#   ... --cfg-options model.absent="['dsm']"
# The checkpoint holds only the trained weights (TrainableCheckpointHook);
# tools/test.py re-attaches the frozen ViT from the converted file.
_base_ = [
    '../_base_/models/mobanet_dinov2_vitb.py',
    './_base_/datasets/synthetic_mm.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_600it_adamw_cpu.py',
]
width = 64  # token width of the tiny ViT
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=width,
            num_layers=4,
            num_heads=4,
            feedforward_channels=4 * width),
        # one block per stage; patch 8 (the cars are 20-26 x 8-10 pixels) and
        # the checkpoint's 16 x 16 pos-embed grid belonging to 128 inputs
        out_indices=[0, 1, 2, 3],
        encoder_cfg=dict(img_size=128, patch_size=8),
        frozen_checkpoint='pretrain/dinov2_tiny_demo_converted.pth'),
    neck=dict(in_channels=[width] * 4, out_channels=64),
    decode_head=dict(
        in_channels=[64] * 4, channels=32, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=32, norm_cfg=norm_cfg),
    # whole 200 x 176 test tiles: 6 windows of 128, stride 64
    test_cfg=dict(mode='slide', crop_size=(128, 128), stride=(64, 64)))

train_dataloader = dict(batch_size=8)

# No validation during training: tools/test.py evaluates the result.
val_cfg = None
val_dataloader = None
val_evaluator = None

randomness = dict(seed=42)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(
        interval={{_base_.max_iters}}, max_keep_ckpts=1, save_best=None))
custom_hooks = [dict(type='TrainableCheckpointHook')]
