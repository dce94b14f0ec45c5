"""Convert DELIVER (RGB, Depth, Event, LiDAR; 25 classes) from its published
layout to the mmrsfusion layout read by ``DELIVERDataset``.

Usage::

    python tools/dataset_converters/deliver.py RAW -o data/deliver \\
        [--depth-folder depth|hha]

Input: the front-view release of github.com/jamycheung/DELIVER (README,
"Data folder structure"; paths as its ``semseg/datasets/deliver.py``
derives them from the RGB file)::

    RAW/img/CONDITION/SPLIT/SEQUENCE/FRAME_rgb_VIEW.png
    RAW/depth/CONDITION/SPLIT/SEQUENCE/FRAME_depth_VIEW.png  (or hha/, the
                                                               folder the
                                                               authors' loader
                                                               reads)
    RAW/event/CONDITION/SPLIT/SEQUENCE/FRAME_event_VIEW.png
    RAW/lidar/CONDITION/SPLIT/SEQUENCE/FRAME_lidar_VIEW.png
    RAW/semantic/CONDITION/SPLIT/SEQUENCE/FRAME_semantic_VIEW.png

CONDITION in cloud, fog, night, rain, sun; SPLIT in train, val, test. As
the authors' loader: RGB = the first 3 channels; Depth / Event / LiDAR =
the first 3 channels, a 1-channel file repeated to 3; the event frame
resized to the RGB size (nearest); the label = the first channel of the
semantic file, 0 and 255 -> 255 (ignored), v -> v - 1 (25 classes 0..24).

Output (STEM = CONDITION_SEQUENCE_FRAME_VIEW)::

    OUT/{img,depth,event,lidar}_dir/SPLIT/STEM.png   8-bit, 3 channels
    OUT/ann_dir/SPLIT/STEM.png                       0..24, 255 ignored
    OUT/conversion.json                              counts per split

Everything is written to a temporary folder renamed to ``OUT`` at the end;
an existing ``OUT`` is refused.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import Dict, List

import cv2
import numpy as np

from mmrsfusion.utils import Progress

SPLITS = ('train', 'val', 'test')
MODALITIES = ('depth', 'event', 'lidar')


def read(path: str) -> np.ndarray:
    """(H, W, C) uint8 in RGB channel order, as torchvision reads it."""
    arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise FileNotFoundError(f'cannot read {path}')
    if arr.ndim == 2:
        return arr[..., None]
    order = [2, 1, 0, 3][:arr.shape[2]] if arr.shape[2] >= 3 else [0]
    return arr[..., order]


def three(arr: np.ndarray) -> np.ndarray:
    """The authors' 3 channels: the first 3, or 1 repeated."""
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[..., :3]


def label(path: str) -> np.ndarray:
    """The semantic file's first channel, 1..25 -> 0..24, else 255."""
    lab = read(path)[..., 0].astype(np.int16)
    lab[lab == 255] = 0
    return np.where(lab == 0, 255, lab - 1).astype(np.uint8)


def sources(rgb: str, depth_folder: str) -> Dict[str, str]:
    """The files of one sample, derived from its RGB path as the authors'
    loader derives them."""
    def swap(folder, tag):
        head, tail = rgb.rsplit(f'{os.sep}img{os.sep}', 1)
        return osp.join(head, folder, tail.replace('_rgb', f'_{tag}'))
    return dict(img=rgb, depth=swap(depth_folder, 'depth'),
                event=swap('event', 'event'), lidar=swap('lidar', 'lidar'),
                ann=swap('semantic', 'semantic'))


def write(path: str, arr: np.ndarray) -> None:
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    if not cv2.imwrite(path, bgr):
        raise OSError(f'cannot write {path}')


def convert(raw: str, out: str, depth_folder: str = 'depth') -> dict:
    """Convert ``raw`` (the published layout) into ``out``; returns the
    counts per split."""
    if osp.exists(out):
        raise FileExistsError(f'{out} exists; remove it or choose another -o')
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.deliver.tmp-', dir=parent)
    rgbs: Dict[str, List[str]] = {
        split: sorted(glob.glob(
            osp.join(raw, 'img', '*', split, '*', '*_rgb*.png')))
        for split in SPLITS
    }
    counts = {split: len(files) for split, files in rgbs.items()}
    bar = Progress(sum(counts.values()), 'images')
    try:
        for split in SPLITS:
            dirs = {k: osp.join(tmp, f'{k}_dir', split)
                    for k in ('img', ) + MODALITIES + ('ann', )}
            for d in dirs.values():
                os.makedirs(d, exist_ok=True)
            for rgb in rgbs[split]:
                files = sources(rgb, depth_folder)
                cond, _, seq, name = osp.relpath(
                    rgb, osp.join(raw, 'img')).split(os.sep)
                stem = f"{cond}_{seq}_{name[:-4].replace('_rgb', '')}"
                img = three(read(files['img']))
                h, w = img.shape[:2]
                write(osp.join(dirs['img'], stem + '.png'), img)
                for key in MODALITIES:
                    arr = three(read(files[key]))
                    if arr.shape[:2] != (h, w):
                        arr = cv2.resize(arr, (w, h),
                                         interpolation=cv2.INTER_NEAREST)
                    write(osp.join(dirs[key], stem + '.png'), arr)
                write(osp.join(dirs['ann'], stem + '.png'),
                      label(files['ann']))
                bar.update()
        bar.close()
        if not sum(counts.values()):
            raise FileNotFoundError(
                f'no RGB files {raw}/img/CONDITION/SPLIT/SEQUENCE/*_rgb*.png')
        with open(osp.join(tmp, 'conversion.json'), 'w') as f:
            json.dump(dict(source=osp.abspath(raw), depth_folder=depth_folder,
                           counts=counts), f, indent=2)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('raw', help='the DELIVER folder (img/, depth/, ...)')
    parser.add_argument('-o', '--out', default='data/deliver')
    parser.add_argument(
        '--depth-folder', default='depth', choices=['depth', 'hha'],
        help="the depth maps' folder: 'depth' (the README's) or 'hha' "
        "(the folder the authors' loader reads)")
    args = parser.parse_args(argv)
    counts = convert(args.raw, args.out, args.depth_folder)
    print(f'{args.out}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))


if __name__ == '__main__':
    sys.exit(main())
