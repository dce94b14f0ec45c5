"""Evaluate a trained multimodal model on every non-empty modality subset.

The test set is read once; each batch is normalised once and then
predicted under each of the 2^M - 1 subsets. For a subset, the other
modalities are absent in the batch's (B, M) presence, exactly as
``model.absent`` makes them: a mask-aware model (SGMA) leaves them out of
computation and attention, any other (MoBaNet, MFNet, early fusion) gets
their channels zeroed by the segmentor. A modality a tile itself lacks
stays absent in every subset.

Prints one row per subset (mIoU, mF1, OA of the config's test evaluator)
and the Average over the subsets, Top-1 (the row of the subset with the
best mIoU) and Last-1 (that of the worst), each naming its subset (SGMA's
Table I; MoBaNet's Table V is the ``rgb`` row against the full one), and
writes the same as JSON. The evaluator's per-class tables, printed first,
are each preceded by the subset they belong to. Tiles done and an ETA are
reported while it runs (a line every 10 s when piped).

Example::

    python tools/analysis_tools/eval_modality_subsets.py \\
        configs/sgma/demo_r18_synthetic_rdn.py work_dirs/sgma_demo/iter_300.pth
"""
import argparse
import copy
import itertools
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.runner.amp import autocast
from prettytable import PrettyTable

from mmrsfusion.engine.hooks.consistency_check_hook import \
    check_modality_spec
from mmrsfusion.io import check_outputs
from mmrsfusion.utils import Progress, load_config

#: Reported columns and the metric keys tried for each, in order.
COLUMNS = dict(mIoU=('mIoU', ), mF1=('mF1', 'mFscore', 'mDice'),
               OA=('OA', 'aAcc'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='mIoU / mF1 / OA for every non-empty modality subset')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='folder for logs and the JSON; '
                        'default work_dirs/<config>_subsets')
    parser.add_argument('--out', help='JSON file (default '
                        '<work-dir>/modality_subsets.json)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out file')
    parser.add_argument(
        '--amp', action='store_true',
        help='mixed-precision inference (autocast: float16 on a GPU, '
        'bfloat16 on the CPU), as tools/test.py --amp')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, e.g. key=value')
    return parser.parse_args(argv)


def subsets_of(names: Sequence[str]) -> List[Tuple[str, ...]]:
    """Every non-empty subset, by size, then in spec order."""
    return [s for r in range(len(names), 0, -1)
            for s in itertools.combinations(names, r)]


def column(metrics: Dict[str, float], name: str) -> float:
    for key in COLUMNS[name]:
        if key in metrics:
            return float(metrics[key])
    raise KeyError(f'the test evaluator returned {sorted(metrics)}; none '
                   f'of {COLUMNS[name]} for {name}')


def summarise(rows: Dict[str, Dict[str, float]]) -> Dict[str, Dict]:
    """Average (per column) over the subsets; Top-1 / Last-1: the whole row
    of the subset with the best / worst mIoU (the first such subset on a
    tie), with ``subset`` naming it."""
    summary = dict(Average={
        col: sum(row[col] for row in rows.values()) / len(rows)
        for col in COLUMNS
    })
    for key, pick in (('Top-1', max), ('Last-1', min)):
        name = pick(rows, key=lambda n: rows[n]['mIoU'])
        summary[key] = dict(rows[name], subset=name)
    return summary


def fresh_samples(samples: Sequence) -> List:
    """New data samples sharing the ground truth, so that the predictions
    of one subset never land in another's."""
    out = []
    for sample in samples:
        new = type(sample)(metainfo=sample.metainfo)
        new.set_data({key: sample.get(key) for key in sample.keys()})
        out.append(new)
    return out


def evaluate_subsets(runner: Runner, amp: bool = False
                     ) -> Tuple[Dict[str, Dict[str, float]], Dict[str, list]]:
    """One pass over the test set, every subset per batch (the model
    under mixed precision with ``amp``).

    A tile that lacks every modality of a subset (``allow_missing`` data)
    is skipped for that subset; a subset without any tile has no row.

    Returns:
        tuple: ``(rows, skipped)``: subset -> metrics, and subset -> the
        ``img_path`` of each tile skipped for it.
    """
    loop = runner.test_loop
    dataset = loop.dataloader.dataset
    model = runner.model
    spec = model.modalities
    names = spec.names
    subsets = subsets_of(names)
    evaluators = {}
    for subset in subsets:
        evaluator = runner.build_evaluator(
            copy.deepcopy(runner.cfg.test_evaluator))
        evaluator.dataset_meta = dataset.metainfo
        evaluators['+'.join(subset)] = evaluator
    skipped = {name: [] for name in evaluators}
    counts = dict.fromkeys(evaluators, 0)
    progress = Progress(len(dataset), 'tiles')
    model.eval()
    with torch.no_grad():
        for data_batch in loop.dataloader:
            data = model.data_preprocessor(data_batch, False)
            for subset in subsets:
                name = '+'.join(subset)
                presence = data['presence'] & spec.presence(
                    [n for n in names if n not in subset],
                    device=data['presence'].device)
                keep = presence.any(1).tolist()
                samples = data['data_samples']
                skipped[name] += [s.metainfo.get('img_path')
                                  for s, k in zip(samples, keep) if not k]
                if not any(keep):
                    continue
                index = [i for i, k in enumerate(keep) if k]
                with autocast(enabled=amp):
                    outputs = model.predict(
                        data['inputs'][index],
                        fresh_samples([samples[i] for i in index]),
                        presence[index])
                evaluators[name].process(
                    data_samples=outputs, data_batch=data_batch)
                counts[name] += len(index)
            progress.update(len(data_batch['data_samples']))
    progress.close()
    rows = {}
    for name, evaluator in evaluators.items():
        if counts[name]:
            print_log(f'subset {name}:', logger='current')
            metrics = evaluator.evaluate(counts[name])
            rows[name] = {col: column(metrics, col) for col in COLUMNS}
    return rows, skipped


def format_table(rows, summary) -> str:
    table = PrettyTable(['subset'] + list(COLUMNS))
    for name, row in rows.items():
        table.add_row([name] + [f'{row[c]:.2f}' for c in COLUMNS])
    table.add_row(['Average'] +
                  [f'{summary["Average"][c]:.2f}' for c in COLUMNS])
    for key in ('Top-1', 'Last-1'):
        table.add_row([f'{key} ({summary[key]["subset"]})'] +
                      [f'{summary[key][c]:.2f}' for c in COLUMNS])
    return table.get_string()


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    cfg.work_dir = args.work_dir or osp.join(
        'work_dirs',
        osp.splitext(osp.basename(args.config))[0] + '_subsets')
    cfg.load_from = args.checkpoint
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None  # test only
    if not cfg.get('test_dataloader') or not cfg.get('test_evaluator'):
        raise ValueError(f'{args.config}: needs test_dataloader and '
                         f'test_evaluator')
    check_outputs({'--out': args.out},
                  {'config': args.config, 'checkpoint': args.checkpoint},
                  args.overwrite)
    runner = Runner.from_cfg(cfg)
    # builds the dataloader and evaluator; the checks tools/test.py makes
    check_modality_spec(runner.model, runner.test_loop.dataloader.dataset,
                        'test_dataloader.dataset')
    runner.load_or_resume()  # refuses a checkpoint of another spec
    rows, skipped = evaluate_subsets(runner, args.amp)
    for name, tiles in skipped.items():
        if tiles:
            print(f'{name}: skipped {len(tiles)} tile(s) without any of its '
                  f'modalities: {", ".join(map(str, tiles))}')
    if not rows:
        raise ValueError('no tile has any modality of any subset')
    summary = summarise(rows)
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        modalities=list(runner.model.modalities.names),
        subsets=rows,
        skipped={k: v for k, v in skipped.items() if v},
        **summary)
    print(format_table(rows, summary))
    out = args.out or osp.join(cfg.work_dir, 'modality_subsets.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'JSON: {out}')
    return result


if __name__ == '__main__':
    main()
