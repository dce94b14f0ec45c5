"""Convert IEEE GRSS DFC2023 track 2 data (RGB, DSM, SAR; building
footprints) to the mmrsfusion layout, with SGMA's train / val split.

Usage::

    python tools/dataset_converters/dfc2023.py RAW -o data/dfc2023 \\
        [--annotations RAW/buildings_train.json | --label-dir DIR] \\
        [--split-dir train] [--val-fraction 0.2] [--seed 0]

Input (the track-2 layout): ``RAW/<split-dir>/{rgb,dsm,sar}/STEM.tif``
(same stems in the three folders) and the building annotations either as a
COCO instance file (``images[].file_name`` / ``id``, ``annotations[]
.image_id`` / polygon ``segmentation``) or as a folder of masks
``STEM.{tif,png}`` (non-zero = building).

Output::

    OUT/{img,dsm,sar}_dir/{train,val}/STEM.tif   copies of the rasters
    OUT/ann_dir/{train,val}/STEM.png             0 background, 1 building
    OUT/conversion.json                          split, counts, per-channel
                                                 mean / std of the training
                                                 rasters (for the config)

Split: the stems sorted, shuffled with ``--seed``, the first
``floor(N * val_fraction)`` to ``val`` (1,773 images -> 1,419 / 354, as in
SGMA). Everything is written to a temporary folder renamed to ``OUT`` at the
end; an existing ``OUT`` is refused.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import Dict, List, Optional

import cv2
import numpy as np

from mmrsfusion.io import read_raster

MODALITIES = dict(rgb='img_dir', dsm='dsm_dir', sar='sar_dir')
SUFFIXES = ('.tif', '.tiff')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='DFC2023 track 2 -> mmrsfusion layout')
    parser.add_argument('raw', help='the track-2 folder')
    parser.add_argument('-o', '--out-dir', required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--annotations', help='COCO instance json')
    group.add_argument('--label-dir', help='folder of masks STEM.tif/png')
    parser.add_argument('--split-dir', default='train',
                        help='subfolder holding rgb/dsm/sar (default train)')
    parser.add_argument('--val-fraction', type=float, default=0.2)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def list_stems(folder: str) -> Dict[str, str]:
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder}: no such folder (expected the '
                                f'rgb / dsm / sar rasters of track 2)')
    return {
        osp.splitext(n)[0]: osp.join(folder, n)
        for n in sorted(os.listdir(folder))
        if n.lower().endswith(SUFFIXES)
    }


def coco_masks(path: str, shapes: Dict[str, tuple]) -> Dict[str, np.ndarray]:
    """Building masks rasterised from COCO polygons, per stem."""
    with open(path) as f:
        coco = json.load(f)
    images = {}
    for img in coco.get('images', []):
        stem = osp.splitext(osp.basename(img['file_name']))[0]
        if stem in shapes:
            images[img['id']] = stem
    masks = {stem: np.zeros(shape, np.uint8) for stem, shape in
             shapes.items()}
    for ann in coco.get('annotations', []):
        stem = images.get(ann['image_id'])
        if stem is None:
            continue
        seg = ann.get('segmentation')
        if not isinstance(seg, list):
            raise ValueError(f'{path}: annotation {ann.get("id")} of '
                             f'{stem}: only polygon segmentations are '
                             f'supported, got {type(seg).__name__}')
        for poly in seg:
            pts = np.round(np.asarray(poly, np.float64).reshape(-1, 2))
            cv2.fillPoly(masks[stem], [pts.astype(np.int32)], 1)
    return masks


def folder_masks(folder: str, stems: List[str]) -> Dict[str, np.ndarray]:
    masks = {}
    for stem in stems:
        found = [osp.join(folder, stem + s)
                 for s in ('.png', '.tif', '.tiff')
                 if osp.isfile(osp.join(folder, stem + s))]
        if not found:
            raise FileNotFoundError(f'{folder}: no mask for {stem} '
                                    f'(expected {stem}.png or .tif)')
        masks[stem] = (read_raster(found[0])[..., 0] != 0).astype(np.uint8)
    return masks


def split(stems: List[str], fraction: float, seed: int) -> Dict[str, list]:
    if not 0 <= fraction < 1:
        raise ValueError(f'--val-fraction: expected [0, 1), got {fraction}')
    order = list(np.random.default_rng(seed).permutation(sorted(stems)))
    n_val = int(len(order) * fraction)
    return dict(train=sorted(order[n_val:]), val=sorted(order[:n_val]))


def convert(raw: str, out_dir: str, annotations: Optional[str] = None,
            label_dir: Optional[str] = None, split_dir: str = 'train',
            val_fraction: float = 0.2, seed: int = 0) -> dict:
    """Write the layout; returns the manifest. See the module docstring."""
    if osp.exists(out_dir):
        raise FileExistsError(f'{out_dir} exists; remove it or choose '
                              f'another -o')
    files = {m: list_stems(osp.join(raw, split_dir, m)) for m in MODALITIES}
    stems = sorted(files['rgb'])
    if not stems:
        raise FileNotFoundError(f'{osp.join(raw, split_dir, "rgb")}: no '
                                f'.tif file')
    for mod in ('dsm', 'sar'):
        missing = [s for s in stems if s not in files[mod]]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} image(s) have no {mod} raster, e.g. '
                f'{osp.join(raw, split_dir, mod, missing[0])}.tif')
    shapes = {s: read_raster(files['rgb'][s]).shape[:2] for s in stems}
    masks = coco_masks(annotations, shapes) if annotations else \
        folder_masks(label_dir, stems)
    parts = split(stems, val_fraction, seed)
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.dfc2023.tmp-', dir=parent)
    sums = {m: None for m in MODALITIES}
    try:
        for name, members in parts.items():
            for mod, folder in list(MODALITIES.items()) + [('ann', 'ann_dir')]:
                os.makedirs(osp.join(tmp, folder, name))
            for stem in members:
                for mod, folder in MODALITIES.items():
                    src = files[mod][stem]
                    shutil.copyfile(src, osp.join(tmp, folder, name,
                                                  stem + '.tif'))
                    if name == 'train':
                        arr = read_raster(src).astype(np.float64)
                        arr = arr.reshape(-1, arr.shape[-1])
                        arr = arr[np.isfinite(arr).all(1)]
                        stats = np.stack([np.full(arr.shape[1], len(arr)),
                                          arr.sum(0), (arr**2).sum(0)])
                        sums[mod] = stats if sums[mod] is None else \
                            sums[mod] + stats
                if masks[stem].shape != shapes[stem]:
                    raise ValueError(f'{stem}: mask {masks[stem].shape} vs '
                                     f'image {shapes[stem]}')
                if not cv2.imwrite(osp.join(tmp, 'ann_dir', name,
                                            stem + '.png'), masks[stem]):
                    raise OSError(f'cannot write the label of {stem}')
        stats = {}
        for mod, s in sums.items():
            if s is not None:
                mean = s[1] / s[0]
                std = np.sqrt(np.maximum(s[2] / s[0] - mean**2, 0))
                stats[mod] = dict(mean=mean.round(4).tolist(),
                                  std=std.round(4).tolist())
        manifest = dict(
            converter='tools/dataset_converters/dfc2023.py',
            source=osp.abspath(raw),
            labels=osp.abspath(annotations or label_dir),
            val_fraction=val_fraction,
            seed=seed,
            counts={k: len(v) for k, v in parts.items()},
            split=parts,
            train_stats=stats,
            classes=['background', 'building'])
        with open(osp.join(tmp, 'conversion.json'), 'w') as f:
            json.dump(manifest, f, indent=1)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        manifest = convert(args.raw, args.out_dir, args.annotations,
                           args.label_dir, args.split_dir, args.val_fraction,
                           args.seed)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.out_dir}: {manifest["counts"]["train"]} train, '
          f'{manifest["counts"]["val"]} val; training mean / std per '
          f'modality (for the config): {manifest["train_stats"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
