"""Train a segmentor: mmseg's ``tools/train.py`` with mmrsfusion registered.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint

import mmrsfusion  # noqa: F401  (registers modules, safe checkpoint loading)
from mmrsfusion.checkpoint import InvalidCheckpointError
from mmrsfusion.engine import check_run_files, setup_cpu_dist
from mmseg.registry import RUNNERS


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir '
        'automatically (or from `load_from` when it is set)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training: float16 on a GPU '
        '(bfloat16 with --cfg-options optim_wrapper.dtype=bfloat16), '
        'bfloat16 on the CPU')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir priority: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        assert optim_wrapper in ('OptimWrapper', 'AmpOptimWrapper',
                                 'MixedPrecisionOptimWrapper'), (
            '`--amp` is only supported when the optimizer wrapper type is '
            f'`OptimWrapper` but got {optim_wrapper}.')
        # AmpOptimWrapper on a GPU (float16, or optim_wrapper.dtype),
        # bfloat16 autocast on the CPU
        cfg.optim_wrapper.type = 'MixedPrecisionOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    for key in ('max_iters', 'max_epochs'):
        value = cfg.get('train_cfg', {}).get(key)
        if value is not None and value <= 0:
            sys.exit(f'error: train_cfg.{key} must be > 0, got {value}: '
                     'nothing would be trained')

    try:  # before the runner dumps the config: fail at once
        check_run_files(cfg, cfg.get('load_from'),
                        loaders=('train_dataloader', 'val_dataloader'))
    except FileNotFoundError as e:
        sys.exit(f'error: {e}')
    cfg.resume = args.resume
    if args.resume and cfg.get('load_from') is None and \
            find_latest_checkpoint(cfg.work_dir) is None:
        print_log(
            f'--resume: no checkpoint to resume in the work dir '
            f'{osp.abspath(cfg.work_dir)} (no last_checkpoint file there): '
            'TRAINING STARTS FROM SCRATCH, at iteration 0. Pass the work '
            'dir of the run to resume (--work-dir), or a checkpoint with '
            '--cfg-options load_from=PATH.',
            logger='current', level=logging.WARNING)
    setup_cpu_dist(cfg)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    try:
        runner.train()
    except InvalidCheckpointError as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
