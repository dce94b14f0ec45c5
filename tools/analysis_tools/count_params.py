"""Count trainable and frozen parameters of a config's model.

Builds the model without loading any weights (on the ``meta`` device, so
even ViT-g configs take no memory) and prints one line per top-level
submodule, ``<name> trainable=<int> frozen=<int>``, then
``total trainable=<int> frozen=<int>``.

Example::

    python tools/analysis_tools/count_params.py \
        configs/mobanet/dinov2_vitb_potsdam.py
"""
import argparse
from typing import List, Tuple

import torch
from mmengine.config import DictAction
from mmseg.registry import MODELS
from torch import nn

from mmrsfusion.utils import load_config


def parse_args():
    parser = argparse.ArgumentParser(
        description='Count trainable / frozen parameters of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, e.g. key=value')
    return parser.parse_args()


def count_parameters(model: nn.Module) -> List[Tuple[str, int, int]]:
    """Return ``(name, trainable, frozen)`` per top-level submodule.

    Parameters registered directly on ``model`` are reported under the
    name ``(self)``; a shared parameter is counted once, under the first
    submodule that holds it.
    """
    seen = set()
    rows = []

    def tally(name, params):
        trainable = frozen = 0
        for p in params:
            if id(p) in seen:
                continue
            seen.add(id(p))
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
        rows.append((name, trainable, frozen))

    for name, child in model.named_children():
        tally(name, child.parameters())
    own = list(model.parameters(recurse=False))
    if own:
        tally('(self)', own)
    return rows


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)

    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    rows = count_parameters(model)
    for name, trainable, frozen in rows:
        print(f'{name} trainable={trainable} frozen={frozen}')
    print(f'total trainable={sum(r[1] for r in rows)} '
          f'frozen={sum(r[2] for r in rows)}')


if __name__ == '__main__':
    main()
