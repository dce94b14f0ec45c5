"""Distributed runs on CPU-only machines (gloo), for the launcher scripts.

mmengine 0.10's ``pytorch`` launcher calls ``torch.cuda.set_device`` before
``init_process_group`` and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``; both fail without a GPU. :func:`setup_cpu_dist`
initialises the process group itself (mmengine then skips its own
initialisation) and sets a CPU-compatible model wrapper, so
``tools/dist_train.sh CONFIG 2`` also runs on a CPU machine (e.g. to test the
launcher). SyncBN layers do not run on CPU: use ``norm_cfg=dict(type='BN')``
there.
"""
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log


def setup_cpu_dist(cfg: Config) -> bool:
    """Prepare ``cfg`` for a ``pytorch``-launched run without CUDA.

    Does nothing unless ``cfg.launcher == 'pytorch'`` (torchrun sets the
    ``RANK`` / ``WORLD_SIZE`` / ``MASTER_*`` environment) and CUDA is
    unavailable. Then it initialises a gloo process group with the timeout
    of ``cfg.env_cfg.dist_cfg`` and, when the model wrapper is (or defaults
    to) ``MMDistributedDataParallel``, sets its ``device_ids=None``,
    keeping any other wrapper settings.

    Args:
        cfg (Config): The run's config; modified in place.

    Returns:
        bool: Whether the CPU setup was applied.
    """
    if cfg.get('launcher') != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
        backend = dist_cfg.get('backend', 'gloo')
        if backend != 'gloo':
            print_log(
                f'No CUDA device: using the gloo backend instead of '
                f'{backend!r}.',
                logger='current')
        kwargs = {}
        if dist_cfg.get('timeout') is not None:
            from datetime import timedelta
            kwargs['timeout'] = timedelta(seconds=dist_cfg['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        # What mmengine's Runner builds when model_wrapper_cfg is unset.
        wrapper = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type', 'MMDistributedDataParallel') == \
            'MMDistributedDataParallel':
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
