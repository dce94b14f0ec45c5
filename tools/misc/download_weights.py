"""Fetch official DINOv2 / SAM weights, verify them and convert them to the
checkpoint the configs load (``pretrain/<name>_converted.pth``).

    python tools/misc/download_weights.py dinov2_vitb14 [sam_vit_l ...] \
        [--dir pretrain] [--force]
    python tools/misc/download_weights.py --list

For each name: the official file is downloaded from its publisher's URL to
``<dir>/<official file name>`` (resumed if interrupted, verified against
its size and SHA-256, renamed into place only once verified; an official
file already there is verified, not downloaded again), then converted with
the model converter of its family (``tools/model_converters/{dinov2,sam}
.py``) to ``<dir>/<name>_converted.pth``. An existing file that differs from
what would be written is refused unless ``--force``. Registry, URLs and
digests: ``mmrsfusion/checkpoint/download.py``.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

import torch

from mmrsfusion.checkpoint import (OFFICIAL_WEIGHTS, DownloadError,
                                   VerificationError, fetch_official,
                                   load_checkpoint_file, official_weights)
from mmrsfusion.models.backbones.vit_checkpoint import (CONVERTERS,
                                                        convert_file)


def _same_weights(path: str, state_dict) -> bool:
    """Whether the checkpoint ``path`` holds exactly ``state_dict``."""
    existing = load_checkpoint_file(path)
    return existing.keys() == state_dict.keys() and all(
        torch.equal(existing[k], state_dict[k]) for k in state_dict)


def install(name: str, directory: str = 'pretrain',
            force: bool = False) -> str:
    """Download (or reuse), verify and convert the official weights
    ``name`` into ``directory``.

    Returns:
        str: Path of the converted checkpoint.

    Raises:
        KeyError: Unknown ``name``.
        DownloadError: Server unreachable (the message has the URL and
            the manual commands).
        VerificationError: The server's file is not the official one (the
            download is deleted).
        FileExistsError: A different file is where the official or the
            converted file goes, and ``force`` is off.
    """
    weights = official_weights(name)
    official = fetch_official(weights, directory, force=force)
    print(f'{official}: official {weights.name} ({weights.size} bytes, '
          f'SHA-256 {weights.sha256[:12]}...) verified')
    converted = osp.join(directory, weights.converted)
    if osp.exists(converted) and not force:
        state_dict = CONVERTERS[weights.family](
            load_checkpoint_file(official))
        if not _same_weights(converted, state_dict):
            raise FileExistsError(
                f'{converted} exists and is not the conversion of '
                f'{official}: it is left untouched; move it away or pass '
                '--force to replace it')
        print(f'{converted}: already converted from {official}')
        return converted
    print(convert_file(official, converted, weights.family))
    return converted


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Download the official DINOv2 / SAM weights from their '
        'publisher, verify them (size and SHA-256) and convert them to the '
        'checkpoints the configs load.')
    parser.add_argument(
        'names', nargs='*', metavar='NAME',
        help=f'weights to fetch: {", ".join(OFFICIAL_WEIGHTS)}')
    parser.add_argument(
        '--dir', default='pretrain',
        help='folder of the official and converted files (default: '
        'pretrain, where the configs look, relative to the working '
        'directory)')
    parser.add_argument(
        '--force', action='store_true',
        help='replace an existing file that differs from the official / '
        'converted one')
    parser.add_argument('--list', action='store_true',
                        help='list the known weights and exit')
    args = parser.parse_args(argv)
    if not args.names and not args.list:
        parser.error('name at least one of: ' + ', '.join(OFFICIAL_WEIGHTS))
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line (see the module docstring); exits with status 1 and
    the reason on the first name that fails."""
    args = parse_args(argv)
    if args.list:
        for w in OFFICIAL_WEIGHTS.values():
            print(f'{w.name:15s} {w.size / 1e6:8.1f} MB  {w.url}  -> '
                  f'{osp.join(args.dir, w.converted)}')
        return
    try:
        for name in args.names:  # every name known before any download
            official_weights(name)
        for name in args.names:
            install(name, args.dir, args.force)
    except (KeyError, DownloadError, VerificationError,
            FileExistsError) as e:
        message = e.args[0] if isinstance(e, KeyError) else str(e)
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == '__main__':
    main()
