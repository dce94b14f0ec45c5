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
SGMA). Everything is written to a hidden staging folder renamed to ``OUT``
at the end (:mod:`mmrsfusion.datasets.staging`: a folder left by a killed
conversion is removed by the next one); an existing ``OUT`` is refused.

Checks (each a named error, nothing written): every raster is read (train
and val alike) and every written file read back
(:func:`mmrsfusion.io.verify_written`); the rgb raster has 3 bands, the DSM
and SAR its size; one file per stem and folder (not ``.tif`` and
``.tiff``); a COCO file that is valid JSON with an ``images[]`` entry per
raster, unique ids, an ``image_id`` in every annotation and polygons of at
least 3 finite points enclosing an area.
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

from mmrsfusion.datasets.staging import commit, owned_prefix, remove_stale
from mmrsfusion.io import read_raster, verify_written
from mmrsfusion.utils import Progress

MODALITIES = dict(rgb='img_dir', dsm='dsm_dir', sar='sar_dir')
SUFFIXES = ('.tif', '.tiff')
LABEL_SUFFIXES = ('.png', '.tif', '.tiff')
RGB_BANDS = 3


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


def _by_stem(folder: str, suffixes) -> Dict[str, str]:
    """``{stem: path}`` of the files of ``folder`` ending in ``suffixes``;
    two files for one stem (``a.tif`` and ``a.tiff``) are refused."""
    files: Dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        if not name.lower().endswith(suffixes):
            continue
        stem = osp.splitext(name)[0]
        if stem in files:
            raise ValueError(
                f'{files[stem]} and {osp.join(folder, name)}: two files for '
                f'{stem}, expected one; remove one of them')
        files[stem] = osp.join(folder, name)
    return files


def list_stems(folder: str) -> Dict[str, str]:
    """The rasters of a modality folder, by stem."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder}: no such folder (expected the '
                                f'rgb / dsm / sar rasters of track 2)')
    return _by_stem(folder, SUFFIXES)


def _check_polygon(poly, where: str) -> np.ndarray:
    """A COCO polygon ``[x0, y0, x1, y1, ...]`` as N x 2 points, refused
    unless it has >= 3 finite points that enclose an area."""
    if not isinstance(poly, list) or not all(
            isinstance(v, (int, float)) for v in poly):
        raise ValueError(f'{where}: expected a polygon [x0, y0, x1, y1, '
                         f'...] of numbers, got {str(poly)[:60]}')
    if len(poly) % 2:
        raise ValueError(f'{where}: odd number of coordinates '
                         f'({len(poly)}); expected x, y pairs')
    pts = np.asarray(poly, np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise ValueError(f'{where}: non-finite coordinate (NaN or inf)')
    if len(pts) < 3:
        raise ValueError(f'{where}: {len(pts)} point(s), expected at least '
                         '3 (a degenerate polygon)')
    x, y = pts[:, 0], pts[:, 1]
    if abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) == 0:
        raise ValueError(f'{where}: the polygon encloses no area (its '
                         'points are collinear or repeated)')
    return pts


def _load_json(path: str) -> dict:
    try:
        with open(path) as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e}); truncated? '
                         'expected a COCO instance file') from e
    if not isinstance(coco, dict) or not isinstance(
            coco.get('images'), list):
        raise ValueError(f'{path}: expected a COCO instance file (an '
                         'object with an images[] list)')
    return coco


def coco_polygons(path: str, rasters: Dict[str, str]
                  ) -> Dict[str, List[np.ndarray]]:
    """The building polygons of each raster stem from a COCO file, every
    entry checked (see the module docstring)."""
    coco = _load_json(path)
    images, ids = {}, {}
    for i, img in enumerate(coco['images']):
        if not isinstance(img, dict) or 'id' not in img or \
                'file_name' not in img:
            raise ValueError(f'{path}: images[{i}] has no id or file_name')
        if img['id'] in images:
            raise ValueError(
                f'{path}: images[{i}] ({img["file_name"]}) has the id '
                f'{img["id"]} of {images[img["id"]]}; expected unique ids')
        stem = osp.splitext(osp.basename(img['file_name']))[0]
        if stem in ids:
            raise ValueError(
                f'{path}: images[{i}] names {img["file_name"]} again (ids '
                f'{ids[stem]} and {img["id"]}); expected one entry per '
                'image')
        images[img['id']], ids[stem] = img['file_name'], img['id']
    unlisted = [s for s in rasters if s not in ids]
    if unlisted:
        raise ValueError(
            f'{rasters[unlisted[0]]}: no images[] entry in {path} '
            f'({len(unlisted)} raster(s) without one); expected one per '
            'raster (it would get an all-background label)')
    polygons: Dict[str, List[np.ndarray]] = {s: [] for s in rasters}
    for i, ann in enumerate(coco.get('annotations', [])):
        where = f'{path}: annotations[{i}] (id {ann.get("id")})' \
            if isinstance(ann, dict) else f'{path}: annotations[{i}]'
        if not isinstance(ann, dict) or 'image_id' not in ann:
            raise ValueError(f'{where}: no image_id')
        if ann['image_id'] not in images:
            raise ValueError(f'{where}: image_id {ann["image_id"]} is not '
                             'an id of images[]')
        stem = osp.splitext(osp.basename(images[ann['image_id']]))[0]
        seg = ann.get('segmentation')
        if not isinstance(seg, list):
            raise ValueError(f'{where} of {stem}: only polygon '
                             'segmentations are supported, got '
                             f'{type(seg).__name__}')
        if stem in polygons:
            polygons[stem] += [
                _check_polygon(p, f'{where}, polygon {j}')
                for j, p in enumerate(seg)
            ]
    return polygons


def label_files(folder: str, stems: List[str]) -> Dict[str, str]:
    """The mask file of each stem in ``folder`` (one per stem)."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder}: no such folder (expected the '
                                'masks STEM.png / .tif)')
    found = _by_stem(folder, LABEL_SUFFIXES)
    missing = [s for s in stems if s not in found]
    if missing:
        raise FileNotFoundError(f'{folder}: no mask for {missing[0]} '
                                f'(expected {missing[0]}.png or .tif; '
                                f'{len(missing)} missing)')
    return found


def split(stems: List[str], fraction: float, seed: int) -> Dict[str, list]:
    if not 0 <= fraction < 1:
        raise ValueError(f'--val-fraction: expected [0, 1), got {fraction}')
    order = list(np.random.default_rng(seed).permutation(sorted(stems)))
    n_val = int(len(order) * fraction)
    return dict(train=sorted(order[n_val:]), val=sorted(order[:n_val]))


def read_image(files: Dict[str, Dict[str, str]], stem: str
               ) -> Dict[str, np.ndarray]:
    """The rgb / dsm / sar rasters of ``stem``, checked: 3 rgb bands, the
    others of the rgb's size."""
    arrays = {m: read_raster(files[m][stem]) for m in MODALITIES}
    rgb = arrays['rgb']
    if rgb.shape[2] != RGB_BANDS:
        raise ValueError(f'{files["rgb"][stem]}: {rgb.shape[2]} band(s), '
                         f'expected {RGB_BANDS} (R, G, B)')
    for mod in ('dsm', 'sar'):
        if arrays[mod].shape[:2] != rgb.shape[:2]:
            raise ValueError(
                f'{files[mod][stem]}: {arrays[mod].shape[0]} x '
                f'{arrays[mod].shape[1]} pixels, expected the size of '
                f'{files["rgb"][stem]} ({rgb.shape[0]} x {rgb.shape[1]}, '
                'H x W)')
    return arrays


def _label(stem: str, shape, polygons, label_file) -> np.ndarray:
    """The 0 / 1 building mask of ``stem`` (``shape``: H x W)."""
    if polygons is not None:
        mask = np.zeros(shape, np.uint8)
        for pts in polygons[stem]:
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        return mask
    path = label_file[stem]
    arr = read_raster(path)
    if arr.shape[:2] != tuple(shape):
        raise ValueError(f'{path}: {arr.shape[0]} x {arr.shape[1]} pixels, '
                         f'expected the size of its image ({shape[0]} x '
                         f'{shape[1]}, H x W)')
    return (arr[..., 0] != 0).astype(np.uint8)


def _stats(sums) -> dict:
    """Per-modality mean / std from the (count, sum, sum of squares) of
    :func:`convert`."""
    stats = {}
    for mod, s in sums.items():
        if s is not None:
            mean = s[1] / s[0]
            std = np.sqrt(np.maximum(s[2] / s[0] - mean**2, 0))
            stats[mod] = dict(mean=mean.round(4).tolist(),
                              std=std.round(4).tolist())
    return stats


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
    polygons = coco_polygons(annotations, files['rgb']) if annotations \
        else None
    masks = None if annotations else label_files(label_dir, stems)
    parts = split(stems, val_fraction, seed)
    out_dir = osp.abspath(out_dir)
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    kind = f'.{osp.basename(out_dir)}.converting-'
    remove_stale(parent, kind)
    tmp = tempfile.mkdtemp(prefix=owned_prefix(kind), dir=parent)
    sums = {m: None for m in MODALITIES}
    bar = Progress(len(stems), 'images')
    try:
        for name, members in parts.items():
            for folder in list(MODALITIES.values()) + ['ann_dir']:
                os.makedirs(osp.join(tmp, folder, name))
            for stem in members:
                arrays = read_image(files, stem)
                label = _label(stem, arrays['rgb'].shape[:2], polygons,
                               masks)
                for mod, folder in MODALITIES.items():
                    dst = osp.join(tmp, folder, name, stem + '.tif')
                    shutil.copyfile(files[mod][stem], dst)
                    verify_written(dst, arrays[mod])
                    if name == 'train':
                        arr = arrays[mod].astype(np.float64)
                        arr = arr.reshape(-1, arr.shape[-1])
                        arr = arr[np.isfinite(arr).all(1)]
                        stats = np.stack([np.full(arr.shape[1], len(arr)),
                                          arr.sum(0), (arr**2).sum(0)])
                        sums[mod] = stats if sums[mod] is None else \
                            sums[mod] + stats
                dst = osp.join(tmp, 'ann_dir', name, stem + '.png')
                if not cv2.imwrite(dst, label):
                    raise OSError(f'{dst}: cannot write the label of {stem}')
                verify_written(dst, label)
                bar.update()
        bar.close()
        manifest = dict(
            converter='tools/dataset_converters/dfc2023.py',
            source=osp.abspath(raw),
            labels=osp.abspath(annotations or label_dir),
            val_fraction=val_fraction,
            seed=seed,
            counts={k: len(v) for k, v in parts.items()},
            split=parts,
            train_stats=_stats(sums),
            classes=['background', 'building'])
        with open(osp.join(tmp, 'conversion.json'), 'w') as f:
            json.dump(manifest, f, indent=1)
        commit(tmp, out_dir)
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
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.out_dir}: {manifest["counts"]["train"]} train, '
          f'{manifest["counts"]["val"]} val; training mean / std per '
          f'modality (for the config): {manifest["train_stats"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
