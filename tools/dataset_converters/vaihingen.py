"""Convert the official ISPRS Vaihingen download to the mmrsfusion layout.

Usage (mmseg's converter shape)::

    python tools/dataset_converters/vaihingen.py RAW_PATH [RAW_PATH ...] \
        -o data/vaihingen [--clip-size 512 --stride-size 256] \
        [--split official|mfnet] [--nproc 4] [--tmp-dir /scratch]

``RAW_PATH``: folders and/or zip archives, searched at any depth for

- ``top_mosaic_09cm_area{N}.tif`` outside ground truth: the IRRG image
  (uint8, 3 bands, written in the file's band order IR, R, G);
- ``dsm_09cm_matching_area{N}.tif``: the DSM (float32, written unchanged,
  no-data values included);
- ``top_mosaic_09cm_area{N}.tif`` inside
  ``ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip`` (or any
  archive / folder whose name marks ground truth, e.g.
  ``gts_for_participants``): the colour-coded label;
- ``top_mosaic_09cm_area{N}_noBoundary.tif``: the eroded label.

Writes ``img_dir``, ``dsm_dir``, ``ann_dir`` and ``ann_eroded_dir`` with
``train`` / ``test`` subfolders; file stems are ``area{N}`` (whole tiles) or
``area{N}_{x0}_{y0}_{x1}_{y1}`` (clips). Areas of the split that are absent
from RAW_PATH are listed in a warning and skipped; an area that is present
but lacks a modality stops the conversion. See
:mod:`mmrsfusion.datasets.isprs_raw` for the colour mapping, clipping and
atomic writing.
"""
import argparse
import sys

from mmrsfusion.datasets.isprs_raw import (DatasetSpec, FileRule,
                                           add_common_args, run_cli)

#: Split tables: name -> {'train': [tile ids], 'test': [tile ids]}.
SPLITS = {
    # ISPRS / mmsegmentation / MoBaNet
    'official': {
        'train': [f'area{n}' for n in
                  (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34,
                   37)],
        'test': [f'area{n}' for n in
                 (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35,
                  38)],
    },
    # MFNet
    'mfnet': {
        'train': [f'area{n}' for n in
                  (1, 3, 23, 26, 7, 11, 13, 28, 17, 32, 34, 37)],
        'test': [f'area{n}' for n in (5, 21, 15, 30)],
    },
}


def _area(n: str) -> str:
    return f'area{int(n)}'


RULES = [
    FileRule('img', r'top_mosaic_09cm_area(\d+)\.tif', _area,
             'top_mosaic_09cm_area{N}.tif', ground_truth=False,
             name_for=lambda t: f'top_mosaic_09cm_{t}.tif'),
    FileRule('dsm', r'dsm_09cm_matching_area(\d+)\.tif', _area,
             'dsm_09cm_matching_area{N}.tif',
             name_for=lambda t: f'dsm_09cm_matching_{t}.tif'),
    FileRule('ann', r'top_mosaic_09cm_area(\d+)\.tif', _area,
             'top_mosaic_09cm_area{N}.tif', ground_truth=True,
             name_for=lambda t: f'top_mosaic_09cm_{t}.tif'),
    FileRule('ann_eroded', r'top_mosaic_09cm_area(\d+)_noBoundary\.tif',
             _area, 'top_mosaic_09cm_area{N}_noBoundary.tif',
             name_for=lambda t: f'top_mosaic_09cm_{t}_noBoundary.tif'),
]


def build_spec(split='official') -> DatasetSpec:
    """The Vaihingen :class:`DatasetSpec` for a split name of
    :data:`SPLITS` or a ``{'train': [...], 'test': [...]}`` dict."""
    table = SPLITS[split] if isinstance(split, str) else split
    return DatasetSpec(
        name='vaihingen', rules=list(RULES), splits=table,
        split_name=split if isinstance(split, str) else 'custom',
        notes=dict(optical='IRRG', bands=['IR', 'R', 'G'],
                   elevation='dsm'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the ISPRS Vaihingen download (zips or '
        'extracted folders) to the mmrsfusion layout.')
    add_common_args(
        parser, 'data/vaihingen', SPLITS,
        split_help='official: ISPRS 16 train / 17 test areas; mfnet: '
        'MFNet\'s 12 / 4 areas (default official)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(build_spec(args.split), args, optical_bands=3)


if __name__ == '__main__':
    sys.exit(main())
