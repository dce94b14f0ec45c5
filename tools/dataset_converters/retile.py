"""Rewrite a data set converted before tiled TIFFs as tiled TIFFs.

Usage::

    python tools/dataset_converters/retile.py data/potsdam [--dry-run]

Every raster of the layout folders (``img_dir``, ``dsm_dir``, ``ndsm_dir``,
``ann_dir``, ``ann_eroded_dir``) that is not a tiled TIFF -- stripped TIFFs
and PNG labels / nDSMs written by earlier converters -- is rewritten in
place as a tiled, zlib-compressed ``.tif`` with the same values (PNGs are
replaced). Training then reads only the crop of each tile
(``LoadMultiModalRandomWindow``). Safe to interrupt and run again. See
:func:`mmrsfusion.datasets.isprs_raw.retile.retile`.
"""
import argparse
import sys

from mmrsfusion.datasets.isprs_raw import ConversionError
from mmrsfusion.datasets.isprs_raw.retile import retile


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Rewrite a converted data set as tiled TIFFs')
    parser.add_argument('data_root', help='the converted data set')
    parser.add_argument('--dry-run', action='store_true',
                        help='only list the files that would be rewritten')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        done = retile(args.data_root, dry_run=args.dry_run)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    verb = 'would rewrite' if args.dry_run else 'rewrote'
    for path in done['rewritten']:
        print(f'{verb} {path}')
    print(f'{verb} {len(done["rewritten"])} file(s); '
          f'{len(done["tiled"])} already tiled')
    return 0


if __name__ == '__main__':
    sys.exit(main())
