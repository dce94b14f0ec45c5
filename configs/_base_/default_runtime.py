# Runtime shared by every mmrsfusion config (mmseg 1.x style).
# Modules resolve in mmseg's registries; importing mmrsfusion registers ours.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmrsfusion'], allow_failed_imports=False)
# Hands the config's top-level `modalities` (the modality spec, declared
# once by the dataset config) to the model and every dataset.
runner_type = 'MultiModalRunner'

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'nccl' for GPUs; CPU-only multi-process runs need
    # --cfg-options env_cfg.dist_cfg.backend=gloo
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
# draws every modality, the ground truth and the prediction side by side
visualizer = dict(
    type='MultiModalSegLocalVisualizer',
    vis_backends=vis_backends,
    name='visualizer')

# Iteration-based training and logging.
log_processor = dict(by_epoch=False)
log_level = 'INFO'

# The hooks live here, not in the schedules (mmengine refuses a key defined
# by two bases). A config changes an interval with e.g.
#   default_hooks = dict(checkpoint=dict(interval=1000))
# The best checkpoint (highest validation mIoU) is kept besides the last 3.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=5000,
        max_keep_ckpts=3,
        save_best='mIoU',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # random states in checkpoints: --resume continues bit-exactly
    random_state=dict(type='RandomStateHook'),
    # a checkpoint that does not fit the model is refused, naming the keys
    checkpoint_fit=dict(type='CheckpointFitHook'),
    # the pipeline loads the modalities the model was built for; a
    # sliding-window test_cfg has positive window and stride
    consistency_check=dict(type='ConsistencyCheckHook'),
    # tiles done and an ETA while validating / testing (a line every 10 s
    # in a log file)
    progress=dict(type='ProgressHook'),
    # test metrics to the visualizer's backends (TensorBoard) as well
    log_test_metrics=dict(type='LogTestMetricsHook'))

# Reproducible by default; change with --cfg-options randomness.seed=N
# (randomness.deterministic=True additionally forces deterministic kernels).
randomness = dict(seed=0, deterministic=False)

load_from = None
resume = False

tta_model = dict(type='SegTTAModel')
