"""The command line shared by the converter scripts."""
import sys
import warnings
from typing import Optional, Sequence

from .convert import convert
from .discovery import DatasetSpec
from .layout import (COLOUR_TOLERANCE, ELEVATION_MISMATCH, IGNORE_INDEX,
                     ConversionError)


def add_common_args(parser, default_out: str, split_names: Sequence[str],
                    split_help: str = 'split table to use'):
    """Arguments in mmseg's converter shape, plus the ones both scripts
    share. Underscore spellings (``--out_dir``) are accepted too."""
    parser.add_argument('raw_paths', nargs='+', metavar='RAW_PATH',
                        help='folder(s) or zip archive(s) of the official '
                        'download; searched at any depth')
    parser.add_argument('-o', '--out-dir', '--out_dir', dest='out_dir',
                        default=default_out,
                        help=f'output root (default {default_out})')
    parser.add_argument('--split', choices=list(split_names),
                        default='official', help=split_help)
    parser.add_argument('--clip-size', '--clip_size', dest='clip_size',
                        type=int, default=None,
                        help='clip tiles into N x N windows (default: whole '
                        'tiles)')
    parser.add_argument('--stride-size', '--stride_size', dest='stride_size',
                        type=int, default=None,
                        help='step between clips (default: the clip size); '
                        'the last clip is flush with the border')
    parser.add_argument('--test-whole', action='store_true',
                        help='keep test tiles whole when clipping')
    parser.add_argument('--tmp-dir', '--tmp_dir', dest='tmp_dir',
                        default=None,
                        help='scratch folder for archives nested in archives')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace layout folders already in OUT_DIR')
    parser.add_argument('--elevation-mismatch', choices=ELEVATION_MISMATCH,
                        default='error',
                        help='what to do when a DSM/nDSM differs in size '
                        'from its image: stop (default) or resample it to '
                        'the image size (nearest neighbour, reported)')
    parser.add_argument('--colour-tolerance', type=int,
                        default=COLOUR_TOLERANCE,
                        help='label pixels within this many levels (every '
                        'channel) of a class colour are snapped to it; '
                        f'others become {IGNORE_INDEX}')
    return parser


def run_cli(spec: DatasetSpec, args, optical_bands: Optional[int] = None
            ) -> int:
    """Run :func:`convert` from parsed :func:`add_common_args` arguments;
    prints a :class:`ConversionError` and returns 1 instead of a
    traceback; warnings are printed as plain ``warning: ...`` lines."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f'warning: {message}', file=sys.stderr)

    shown = warnings.showwarning
    warnings.showwarning = show
    try:
        convert(spec, args.raw_paths, args.out_dir,
                clip_size=args.clip_size, stride_size=args.stride_size,
                test_whole=args.test_whole, nproc=args.nproc,
                tmp_dir=args.tmp_dir, overwrite=args.overwrite,
                elevation_mismatch=args.elevation_mismatch,
                tolerance=args.colour_tolerance,
                optical_bands=optical_bands)
    except ConversionError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
    return 0
