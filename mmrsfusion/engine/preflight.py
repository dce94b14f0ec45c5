"""Checks of the files a run needs, made by ``tools/train.py`` and
``tools/test.py`` before the runner is built (and the config dumped), so
that a first run fails at once, naming the command that writes the file."""
import glob
import os.path as osp
import re
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

from mmseg.registry import DATASETS

#: Our pretrained-weight files (by file name) -> the command writing them,
#: ``{path}`` standing for the missing path.
PRETRAIN_COMMANDS: List[Tuple[str, str]] = [
    (r'dinov2_tiny_demo_pretrain\.pth$',
     'mmrsfusion make-tiny-vit {path}'),
    (r'dinov2_tiny_demo_converted\.pth$',
     'mmrsfusion make-tiny-vit '
     'pretrain/dinov2_tiny_demo_pretrain.pth && '
     'mmrsfusion convert-weights dinov2 '
     'pretrain/dinov2_tiny_demo_pretrain.pth {path}'),
    (r'dinov2_vit([sblg])14_converted\.pth$',
     'mmrsfusion convert-weights dinov2 '
     'dinov2_vit{0}14_pretrain.pth {path} (the official DINOv2 weights)'),
    (r'sam_vit_([blh])_converted\.pth$',
     'mmrsfusion convert-weights sam sam_vit_{0}_*.pth {path} '
     '(the official SAM weights)'),
]


def pretrain_command(path: str) -> Optional[str]:
    """The command that writes the pretrained-weight file ``path``, or
    None if none of ours does."""
    for pattern, command in PRETRAIN_COMMANDS:
        match = re.search(pattern, osp.basename(path))
        if match:
            return command.format(*match.groups(), path=path)
    return None


def _weight_files(node, where: str) -> Iterator[Tuple[str, str]]:
    """``(config key, path)`` of every ``frozen_checkpoint`` and
    ``Pretrained`` ``init_cfg.checkpoint`` under ``node`` (local paths
    only: URLs and ``open-mmlab://`` names are downloaded)."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f'{where}.{key}' if where else key
            if key == 'frozen_checkpoint' and isinstance(value, str):
                yield here, value
            elif key == 'checkpoint' and isinstance(value, str) and \
                    node.get('type') == 'Pretrained':
                yield here, value
            else:
                yield from _weight_files(value, here)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _weight_files(value, f'{where}[{i}]')


def list_checkpoints(work_dir: str) -> str:
    """What ``work_dir`` holds to test: its ``*.pth`` files and the
    checkpoint its ``last_checkpoint`` names (one line each)."""
    lines = []
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            lines.append(f'  last_checkpoint -> {f.read().strip()}')
    lines += [f'  {p}' for p in sorted(glob.glob(osp.join(work_dir,
                                                           '*.pth')))]
    return '\n'.join(lines) if lines else '  (none)'


def check_run_files(cfg: Config, checkpoint: Optional[str] = None,
                    loaders: Tuple[str, ...] = ()) -> None:
    """Raise a FileNotFoundError for the first missing file of a run.

    Args:
        cfg (Config): The merged config.
        checkpoint (str, optional): The checkpoint to test; when missing,
            the message lists the checkpoints of its folder and of
            ``cfg.work_dir`` (and their ``last_checkpoint``).
        loaders (tuple[str]): Dataloader keys (e.g. ``'test_dataloader'``)
            whose ``dataset.data_root`` must exist; the message names the
            command writing the data (the dataset's ``MAKE_COMMAND``).
    """
    if checkpoint is not None and '://' not in checkpoint and \
            not osp.isfile(checkpoint):
        dirs = dict.fromkeys(
            d for d in (osp.dirname(checkpoint) or '.', cfg.get('work_dir'))
            if d and osp.isdir(d))
        found = '\n'.join(f'{d}:\n{list_checkpoints(d)}' for d in dirs)
        raise FileNotFoundError(
            f'checkpoint {checkpoint} does not exist. Checkpoints found:\n'
            f'{found or "  (no such folder)"}\n'
            'The last one a training run saved is named in the work dir\'s '
            '`last_checkpoint` file.')
    for key, path in _weight_files(cfg.get('model', {}), 'model'):
        if '://' not in path and not osp.isfile(path):
            command = pretrain_command(path)
            hint = f'; write it with: {command}' if command else \
                '; download or convert it (see the config\'s header)'
            raise FileNotFoundError(
                f'{key}: pretrained weights {path} do not exist{hint}')
    for name in loaders:
        dataset = (cfg.get(name) or {}).get('dataset') or {}
        root = dataset.get('data_root')
        if root is None or osp.isdir(root):
            continue
        cls = DATASETS.get(dataset.get('type')) \
            if isinstance(dataset.get('type'), str) else dataset.get('type')
        command = cls.make_command(root, dataset.get('data_prefix') or {}) \
            if hasattr(cls, 'make_command') else None
        hint = '' if command is None else f'; write it with: {command}'
        raise FileNotFoundError(
            f'{name}.dataset.data_root {root} does not exist{hint}')
