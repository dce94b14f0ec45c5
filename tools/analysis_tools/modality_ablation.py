"""Modality ablation of a multimodal config: is the fused model better than
the same model fed one modality only, and how much does it lose when a
modality goes missing at test time, with and without MCRM?

Trains (``tools/train.py``) and tests (``tools/test.py``) four models of one
config, all with the same seed and schedule:

==============  =========================================================
``fused``       the config as it is (e.g. MoBaNet with MCRM)
``no_mcrm``     the same without MCRM: no masking (batch augmentations),
                no auxiliary heads and no hard-pixel loss, MoBaNet's
                "without MCRM" model of Tables IV and V
``<m>_only``    the same architecture fed modality ``m`` only: every other
                modality zeroed after normalisation in training AND testing
                (``model.absent=[...]``,
                ``model.absent_in_training=True``), without
                masking and with the auxiliary head of ``m`` only
==============  =========================================================

and tests ``fused`` and ``no_mcrm`` also with each modality missing
(``--cfg-options model.absent="['<m>']"``). Then prints a table and
one line per comparison: the fused model's mIoU beside each single-modality
model's, and each missing-modality test's mIoU with its drop.

Example (the CPU demo; about 4 trainings of a few minutes each)::

    OMP_NUM_THREADS=2 python tools/analysis_tools/modality_ablation.py \
        configs/mobanet/demo_tinyvit_synthetic.py \
        --work-dir work_dirs/modality_ablation

The config's data and pretrained files must exist (for the demo:
``tools/misc/make_synthetic_dataset.py`` and
``tools/misc/make_tiny_vit_checkpoint.py`` + ``tools/model_converters/
dinov2.py``, see the config's header). Runs whose last checkpoint exists
are not trained again (``--retrain`` to force).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config, DictAction

from mmrsfusion.utils import ModalitySpec, load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METRICS = ('mIoU', 'mF1', 'OA')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Fused vs single-modality models, and missing-modality '
        'tests with and without MCRM')
    parser.add_argument('config', nargs='?',
                        default='configs/mobanet/demo_tinyvit_synthetic.py')
    parser.add_argument('--work-dir', default='work_dirs/modality_ablation')
    parser.add_argument('--iters', type=int,
                        help='override max_iters (the schedulers ending at '
                        'the config\'s max_iters are stretched to it)')
    parser.add_argument('--runs', nargs='+',
                        help='subset of runs: fused no_mcrm <m>_only ...')
    parser.add_argument('--retrain', action='store_true',
                        help='train again even if a checkpoint exists')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='extra overrides for every run (train and test)')
    return parser.parse_args(argv)


def fmt_option(key, value) -> str:
    """``key=value`` for ``--cfg-options`` (repr for lists / strings)."""
    if isinstance(value, (list, tuple)):
        return f'{key}={list(value)!r}'.replace(' ', '')
    if value is None:
        return f'{key}=None'
    return f'{key}={value}'


def schedule_options(cfg: Config, iters: int) -> Dict:
    """Overrides that retarget an iteration-based schedule to ``iters``:
    the schedulers' ``begin`` / ``end`` (and ``T_max``) scaled by
    ``iters / max_iters``, so warm-up and decay keep their proportions."""
    old = cfg.train_cfg.max_iters
    options = {'train_cfg.max_iters': iters}
    ckpt = cfg.default_hooks.get('checkpoint', {})
    if ckpt.get('interval', 0) >= old:
        options['default_hooks.checkpoint.interval'] = iters
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]

    def scale(value):
        return max(1, round(value * iters / old)) if value else value

    for i, sched in enumerate(schedulers):
        begin = scale(sched.get('begin', 0))
        end = scale(sched.get('end', old))
        options[f'param_scheduler.{i}.begin'] = begin
        options[f'param_scheduler.{i}.end'] = end
        if 'T_max' in sched:
            options[f'param_scheduler.{i}.T_max'] = end - begin
    return options


def run(cmd: List[str], log: str) -> None:
    start = time.time()
    with open(log, 'w') as f:
        result = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode:
        with open(log) as f:
            tail = f.read()[-3000:]
        sys.exit(f'failed ({result.returncode}): {" ".join(cmd)}\n'
                 f'log: {log}\n{tail}')
    print(f'  done in {time.time() - start:.0f} s: {" ".join(cmd[1:3])} '
          f'(log {log})', flush=True)


def last_checkpoint(work_dir: str) -> Optional[str]:
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        ckpt = f.read().strip()
    return ckpt if osp.isfile(ckpt) else None


def read_metrics(work_dir: str) -> Dict[str, float]:
    """The metrics tools/test.py dumped into work_dir/<timestamp>/."""
    dumps = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                   key=osp.getmtime)
    if not dumps:
        raise FileNotFoundError(f'no metrics json under {work_dir}')
    with open(dumps[-1]) as f:
        return json.load(f)


def ablation_runs(names: List[str]) -> Dict[str, Dict]:
    """``--cfg-options`` of each run, for the modality names ``names``."""
    runs = {
        'fused': {},
        # MoBaNet's "without MCRM" (Table IV/V): no masking, and no aux heads
        # or hard-pixel loss either (they are part of MCRM)
        'no_mcrm': {
            'model.data_preprocessor.batch_augments': None,
            'model.auxiliary_head': None,
            'model.aux_loss': None,
            'model.aux_modalities': None,
        },
    }
    for keep in names:
        # one modality: nothing to balance, so no masking; its own aux head
        runs[f'{keep}_only'] = {
            'model.absent': [n for n in names if n != keep],
            'model.absent_in_training': True,
            'model.data_preprocessor.batch_augments': None,
            'model.aux_modalities': [keep],
        }
    return runs


def resolve_config(config: str) -> str:
    """Absolute path of ``config``, given relative to the current folder or
    to the repository root."""
    for path in (config, osp.join(ROOT, config)):
        if osp.isfile(path):
            return osp.abspath(path)
    sys.exit(f'config {config!r} not found (relative to {os.getcwd()} or '
             f'{ROOT})')


def main(argv=None):
    args = parse_args(argv)
    # train.py / test.py run in ROOT: hand them absolute paths only
    config = resolve_config(args.config)
    args.work_dir = osp.abspath(args.work_dir)
    cfg = load_config(config)
    spec = cfg.model.get('modalities')
    if not spec:
        sys.exit(f'{config}: no modality spec (the top-level `modalities` '
                 'or model.modalities)')
    names = ModalitySpec(spec, 'model.modalities').names
    base = dict(args.cfg_options)
    if args.iters:
        base.update(schedule_options(cfg, args.iters))

    runs = ablation_runs(names)
    if args.runs:
        unknown = set(args.runs) - set(runs)
        if unknown:
            sys.exit(f'unknown runs {sorted(unknown)}; known: {list(runs)}')
        runs = {k: v for k, v in runs.items() if k in args.runs}

    py = sys.executable
    os.makedirs(args.work_dir, exist_ok=True)
    results = {}
    for name, options in runs.items():
        opts = {**base, **options}
        work_dir = osp.join(args.work_dir, name)
        train_opts = [fmt_option(k, v) for k, v in opts.items()]
        ckpt = last_checkpoint(work_dir)
        if ckpt is None or args.retrain:
            print(f'[{name}] training', flush=True)
            os.makedirs(work_dir, exist_ok=True)
            cmd = [py, 'tools/train.py', config, '--work-dir', work_dir]
            if train_opts:
                cmd += ['--cfg-options'] + train_opts
            run(cmd, osp.join(work_dir, 'train.log'))
            ckpt = last_checkpoint(work_dir)
            if ckpt is None:
                sys.exit(f'[{name}] training wrote no checkpoint in '
                         f'{work_dir} (is checkpoint saving disabled?)')
        else:
            print(f'[{name}] using {ckpt}', flush=True)
        tests = {'all': opts.get('model.absent', [])}
        if name in ('fused', 'no_mcrm'):
            for m in names:
                tests[f'no_{m}'] = [m]
        for test, drop in tests.items():
            test_dir = osp.join(work_dir, f'test_{test}')
            test_opts = dict(opts, **{'model.absent': drop})
            print(f'[{name}] testing ({test})', flush=True)
            os.makedirs(test_dir, exist_ok=True)
            run([py, 'tools/test.py', config, ckpt, '--work-dir', test_dir,
                 '--cfg-options'] +
                [fmt_option(k, v) for k, v in test_opts.items()],
                osp.join(test_dir, 'test.log'))
            results[(name, test)] = read_metrics(test_dir)

    print()
    print(f'{"model":<10} {"input at test":<16} ' +
          ' '.join(f'{m:>6}' for m in METRICS))
    for (name, test), metrics in results.items():
        kept = [n for n in names if n not in (
            runs[name].get('model.absent', []) if test == 'all'
            else [test[3:]])]
        print(f'{name:<10} {"+".join(kept):<16} ' +
              ' '.join(f'{metrics[m]:6.2f}' for m in METRICS))
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump({f'{k[0]}/{k[1]}': v for k, v in results.items()}, f,
                  indent=1)

    print()
    get = {k: v['mIoU'] for k, v in results.items()}
    if ('fused', 'all') in get:
        line = f'mIoU: fused {get["fused", "all"]:.2f}'
        for m in names:
            if (f'{m}_only', 'all') in get:
                line += f', {m}-only model {get[f"{m}_only", "all"]:.2f}'
        print(line)
    for name, label in (('fused', 'with MCRM'), ('no_mcrm', 'without MCRM')):
        for m in names:
            if (name, 'all') in get and (name, f'no_{m}') in get:
                kept = '+'.join(n for n in names if n != m)
                drop = get[name, 'all'] - get[name, f'no_{m}']
                print(f'{kept}-only test ({m} zeroed), {label}: mIoU '
                      f'{get[name, f"no_{m}"]:.2f} (drop {drop:.2f} from '
                      f'{get[name, "all"]:.2f})')


if __name__ == '__main__':
    main()
