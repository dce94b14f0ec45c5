"""Colour-coded labels to class indices, with a colour tolerance."""
from typing import Dict, Sequence, Tuple

import numpy as np

from .layout import (BOUNDARY_COLOUR, COLOUR_TOLERANCE, IGNORE_INDEX,
                     MAX_UNKNOWN_FRACTION, PALETTE)

_LUT_CACHE: Dict[tuple, Tuple[np.ndarray, np.ndarray]] = {}
# kinds of a colour in the lookup table
_EXACT, _SNAPPED, _UNKNOWN, _IGNORED = 0, 1, 2, 3


def _colour_luts(palette, ignore_colours, tolerance):
    key = (tuple(map(tuple, palette)), tuple(map(tuple, ignore_colours)),
           tolerance)
    if key not in _LUT_CACHE:
        index = np.full((256, 256, 256), IGNORE_INDEX, dtype=np.uint8)
        kind = np.full((256, 256, 256), _UNKNOWN, dtype=np.uint8)
        entries = [(c, i) for i, c in enumerate(palette)]
        entries += [(c, IGNORE_INDEX) for c in ignore_colours]
        for colour, idx in entries:
            lo = [max(0, v - tolerance) for v in colour]
            hi = [min(255, v + tolerance) + 1 for v in colour]
            cube = (slice(lo[0], hi[0]), slice(lo[1], hi[1]),
                    slice(lo[2], hi[2]))
            index[cube] = idx
            kind[cube] = _IGNORED if idx == IGNORE_INDEX else _SNAPPED
        for colour, idx in entries:
            kind[tuple(colour)] = _IGNORED if idx == IGNORE_INDEX else _EXACT
        _LUT_CACHE.clear()  # keep at most one pair (2 x 16 MiB)
        _LUT_CACHE[key] = (index, kind)
    return _LUT_CACHE[key]


def colour_to_index(rgb: np.ndarray,
                    palette: Sequence[Sequence[int]] = PALETTE,
                    ignore_colours: Sequence[Sequence[int]] = (),
                    tolerance: int = COLOUR_TOLERANCE
                    ) -> Tuple[np.ndarray, Dict[str, int]]:
    """Map an RGB colour-coded label to class indices.

    A pixel equal to ``palette[i]`` becomes ``i``. Real ISPRS label TIFFs
    carry a few pixels with slightly-off colours; a pixel whose every
    channel is within ``tolerance`` levels of a palette colour is snapped
    to that class (at most one palette colour can be that close, since
    palette colours differ by 255 in some channel and ``tolerance`` < 128).
    Pixels equal or that close to an ``ignore_colours`` entry (black in the
    eroded labels) and every other colour become :data:`IGNORE_INDEX`.

    Args:
        rgb (np.ndarray): H x W x 3 uint8, RGB order.
        palette: Class colours, index = class.
        ignore_colours: Colours meaning "ignore".
        tolerance (int): Max per-channel distance for snapping, 0..127.

    Returns:
        tuple: (H x W uint8 index map, counts ``{'exact', 'snapped',
        'unknown', 'ignored'}`` of pixels).
    """
    if not 0 <= tolerance < 128:
        raise ValueError(f'tolerance must be in [0, 127], got {tolerance}')
    index_lut, kind_lut = _colour_luts(palette, ignore_colours, tolerance)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    index = index_lut[r, g, b]
    counts = np.bincount(kind_lut[r, g, b].ravel(), minlength=4)
    stats = dict(exact=int(counts[_EXACT]), snapped=int(counts[_SNAPPED]),
                 unknown=int(counts[_UNKNOWN]),
                 ignored=int(counts[_IGNORED]))
    return index, stats


def is_colour_label(arr: np.ndarray) -> bool:
    """Whether ``arr`` is an ISPRS colour-coded label rather than an image:
    H x W x 3 (or 4) uint8 whose pixels, all but at most
    :data:`MAX_UNKNOWN_FRACTION`, are within :data:`COLOUR_TOLERANCE` of the
    six class colours or the black boundary colour. Photographs are far
    from that (a few per cent of their pixels at most)."""
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.dtype != np.uint8:
        return False
    _, stats = colour_to_index(arr[..., :3], PALETTE, (BOUNDARY_COLOUR, ))
    return stats['unknown'] <= MAX_UNKNOWN_FRACTION * arr[..., 0].size
