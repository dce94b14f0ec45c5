"""Convert the official ISPRS Potsdam download to the mmrsfusion layout.

Usage (mmseg's converter shape)::

    python tools/dataset_converters/potsdam.py RAW_PATH [RAW_PATH ...] \
        -o data/potsdam [--clip-size 512 --stride-size 256] \
        [--optical RGBIR|RGB|IRRG] [--elevation dsm|ndsm|both] \
        [--split official|mmseg|mfnet] [--nproc 4] [--tmp-dir /scratch]

``RAW_PATH``: folders and/or zip archives (``2_Ortho_RGB.zip``,
``3_Ortho_IRRG.zip``, ``4_Ortho_RGBIR.zip``, ``1_DSM.zip``,
``1_DSM_normalisation.zip``, ``5_Labels_all.zip``,
``5_Labels_all_noBoundary.zip``, or their extracted folders), searched at
any depth for

- ``top_potsdam_{a}_{b}_{RGB|IRRG|RGBIR}.tif``: the optical image chosen by
  ``--optical`` (uint8; RGBIR has 4 bands R, G, B, IR; written in the
  file's band order);
- ``dsm_potsdam_{aa}_{bb}.tif`` (two-digit, zero-padded): the DSM (float32,
  written unchanged);
- ``dsm_potsdam_{aa}_{bb}_normalized_lastools.jpg``: the nDSM (uint8,
  written losslessly as a TIFF);
- ``top_potsdam_{a}_{b}_label.tif`` / ``top_potsdam_{a}_{b}_label_noBoundary
  .tif``: colour-coded label / eroded label.

Writes ``img_dir``, ``dsm_dir`` and/or ``ndsm_dir``, ``ann_dir`` and
``ann_eroded_dir`` with ``train`` / ``test`` subfolders; file stems are
``{a}_{b}`` (whole tiles) or ``{a}_{b}_{x0}_{y0}_{x1}_{y1}`` (clips).
Tiles of the split that are absent are listed in a warning and skipped; a
tile that is present but lacks a modality stops the conversion. See
:mod:`mmrsfusion.datasets.isprs_raw`.
"""
import argparse
import sys

from mmrsfusion.datasets.isprs_raw import (DatasetSpec, FileRule,
                                           add_common_args, run_cli)


def _tiles(pairs):
    return [f'{a}_{b}' for a, bs in pairs for b in bs]


#: The 24 labelled tiles of the official training set (with 7_10).
_OFFICIAL_TRAIN = _tiles([(2, (10, 11, 12)), (3, (10, 11, 12)),
                          (4, (10, 11, 12)), (5, (10, 11, 12)),
                          (6, (7, 8, 9, 10, 11, 12)),
                          (7, (7, 8, 9, 10, 11, 12))])
_OFFICIAL_TEST = ['2_13', '2_14', '3_13', '3_14', '4_13', '4_14', '4_15',
                  '5_13', '5_14', '5_15', '6_13', '6_14', '6_15', '7_13']
_MFNET_TEST = ['4_10', '5_11', '2_11', '3_10', '6_11', '7_12']

#: Split tables: name -> {'train': [tile ids], 'test': [tile ids]}.
SPLITS = {
    # MoBaNet's official split: 7_10 dropped from train (faulty label).
    'official': {
        'train': [t for t in _OFFICIAL_TRAIN if t != '7_10'],
        'test': list(_OFFICIAL_TEST),
    },
    # mmsegmentation's official split: all 24 training tiles.
    'mmseg': {
        'train': list(_OFFICIAL_TRAIN),
        'test': list(_OFFICIAL_TEST),
    },
    # MFNet: 6 of the 24 labelled training tiles for test, 18 for train.
    'mfnet': {
        'train': [t for t in _OFFICIAL_TRAIN if t not in _MFNET_TEST],
        'test': list(_MFNET_TEST),
    },
}

#: --optical choice -> (band order written, number of bands)
OPTICAL = {
    'RGBIR': (['R', 'G', 'B', 'IR'], 4),
    'RGB': (['R', 'G', 'B'], 3),
    'IRRG': (['IR', 'R', 'G'], 3),
}
ELEVATION = ('dsm', 'ndsm', 'both')


def _tile(a: str, b: str) -> str:
    return f'{int(a)}_{int(b)}'


def _padded(tile: str) -> str:
    a, b = tile.split('_')
    return f'{int(a):02d}_{int(b):02d}'


def build_spec(split='official', optical='RGBIR',
               elevation='dsm') -> DatasetSpec:
    """The Potsdam :class:`DatasetSpec` for a split name of :data:`SPLITS`
    (or a ``{'train': [...], 'test': [...]}`` dict), an ``--optical`` and
    an ``--elevation`` choice."""
    if optical not in OPTICAL:
        raise ValueError(f'optical must be one of {list(OPTICAL)}')
    if elevation not in ELEVATION:
        raise ValueError(f'elevation must be one of {ELEVATION}')
    rules = [
        FileRule('img', rf'top_potsdam_(\d+)_(\d+)_{optical}\.tif', _tile,
                 f'top_potsdam_{{a}}_{{b}}_{optical}.tif',
                 name_for=lambda t: f'top_potsdam_{t}_{optical}.tif')
    ]
    if elevation in ('dsm', 'both'):
        rules.append(
            FileRule('dsm', r'dsm_potsdam_(\d+)_(\d+)\.tif', _tile,
                     'dsm_potsdam_{aa}_{bb}.tif (zero-padded, e.g. '
                     'dsm_potsdam_02_10.tif)',
                     name_for=lambda t: f'dsm_potsdam_{_padded(t)}.tif'))
    if elevation in ('ndsm', 'both'):
        rules.append(
            FileRule('ndsm', r'dsm_potsdam_(\d+)_(\d+)_normalized_lastools'
                     r'\.jpg', _tile,
                     'dsm_potsdam_{aa}_{bb}_normalized_lastools.jpg',
                     name_for=lambda t: f'dsm_potsdam_{_padded(t)}'
                     '_normalized_lastools.jpg'))
    rules += [
        FileRule('ann', r'top_potsdam_(\d+)_(\d+)_label\.tif', _tile,
                 'top_potsdam_{a}_{b}_label.tif',
                 name_for=lambda t: f'top_potsdam_{t}_label.tif'),
        FileRule('ann_eroded', r'top_potsdam_(\d+)_(\d+)_label_noBoundary'
                 r'\.tif', _tile, 'top_potsdam_{a}_{b}_label_noBoundary.tif',
                 name_for=lambda t: f'top_potsdam_{t}_label_noBoundary.tif'),
    ]
    table = SPLITS[split] if isinstance(split, str) else split
    return DatasetSpec(
        name='potsdam', rules=rules, splits=table,
        split_name=split if isinstance(split, str) else 'custom',
        notes=dict(optical=optical, bands=OPTICAL[optical][0],
                   elevation=elevation))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the ISPRS Potsdam download (zips or extracted '
        'folders) to the mmrsfusion layout.')
    add_common_args(
        parser, 'data/potsdam', SPLITS,
        split_help='official: ISPRS train/test as MoBaNet uses it (7_10 '
        'dropped: faulty label); mmseg: the same with 7_10; mfnet: MFNet\'s '
        '18/6 split of the 24 training tiles (default official)')
    parser.add_argument('--optical', choices=list(OPTICAL), default='RGBIR',
                        help='optical archive to read (RGBIR: 4 bands R, G, '
                        'B, IR)')
    parser.add_argument('--elevation', choices=ELEVATION, default='dsm',
                        help='DSM (1_DSM), nDSM (1_DSM_normalisation) or both')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    spec = build_spec(args.split, args.optical, args.elevation)
    return run_cli(spec, args, optical_bands=OPTICAL[args.optical][1])


if __name__ == '__main__':
    sys.exit(main())
