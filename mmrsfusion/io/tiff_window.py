"""Reading a window of a local TIFF, decoding only the tiles (or strips)
that overlap it."""
import os
from functools import lru_cache
from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np
import tifffile

from .raster import tiff_nodata

Window = Tuple[int, int, int, int]  # y0, y1, x0, x1


class TiffLayout(NamedTuple):
    """Where the pixels of a TIFF's first page are: enough to decode any
    window without parsing the file again."""
    shape: Tuple[int, int, int]  # H, W, bands
    dtype: np.dtype
    tiled: bool
    segment: Tuple[int, int]  # rows, columns of a tile or strip
    planes: int  # separately stored bands (planar) or 1
    offsets: Tuple[int, ...]
    bytecounts: Tuple[int, ...]
    decode: Callable
    jpegtables: Optional[bytes]
    nodata: Optional[float]


@lru_cache(maxsize=1024)
def _layout(path: str, mtime_ns: int, size: int) -> TiffLayout:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.imagedepth != 1 or len(page.shape) not in (2, 3):
                raise ValueError(f'{path}: expected a 2-D raster (H, W) or '
                                 f'(H, W, bands), got a TIFF of shape '
                                 f'{page.shape}')
            height, width = page.imagelength, page.imagewidth
            if page.is_tiled:
                segment = (page.tilelength, page.tilewidth)
            else:
                segment = (min(page.rowsperstrip, height), width)
            bands = page.samplesperpixel
            return TiffLayout((height, width, bands), page.dtype,
                              page.is_tiled, segment,
                              bands if page.planarconfig == 2 else 1,
                              tuple(page.dataoffsets),
                              tuple(page.databytecounts), page.decode,
                              page.jpegtables, tiff_nodata(page))
    except Exception as e:  # tifffile raises several types
        if str(e).startswith(path):  # ours
            raise
        raise ValueError(f'{path}: cannot read as TIFF ({e})') from e


def tiff_layout(path: str) -> TiffLayout:
    """The :class:`TiffLayout` of a local TIFF, parsed once per file
    version (path, modification time, size)."""
    stat = os.stat(path)
    return _layout(path, stat.st_mtime_ns, stat.st_size)


def read_tiff_window(path: str,
                     window: Window) -> Tuple[np.ndarray, Optional[float]]:
    """Read the pixels ``[y0:y1, x0:x1]`` of a local TIFF, decoding only
    the tiles (or strips) that overlap them.

    Tiled TIFFs (what the converters write) cost a few tiles per window;
    stripped ones whole rows of strips. Values are those of a full read
    (the same ``tifffile`` decoders).

    Args:
        path (str): Local TIFF file.
        window (tuple): ``(y0, y1, x0, x1)``, clipped to the raster.

    Returns:
        tuple: ``(array (h, w, bands) in the stored dtype, GDAL_NODATA or
        None)``.

    Raises:
        ValueError: Not a 2-D raster, or cannot be decoded.
    """
    layout = tiff_layout(path)
    height, width, bands = layout.shape
    seg_h, seg_w = layout.segment
    y0, y1, x0, x1 = window
    y0, y1 = max(y0, 0), min(y1, height)
    x0, x1 = max(x0, 0), min(x1, width)
    out = np.empty((y1 - y0, x1 - x0, bands), layout.dtype)
    across = -(-width // seg_w)
    per_plane = across * -(-height // seg_h)
    try:
        with open(path, 'rb') as f:
            fd = f.fileno()
            for plane in range(layout.planes):
                for row in range(y0 // seg_h, (y1 - 1) // seg_h + 1):
                    for col in range(x0 // seg_w, (x1 - 1) // seg_w + 1):
                        index = plane * per_plane + row * across + col
                        data = os.pread(fd, layout.bytecounts[index],
                                        layout.offsets[index])
                        seg, (_, _, top, left, _), _ = layout.decode(
                            data, index, jpegtables=layout.jpegtables)
                        seg = seg.reshape(seg.shape[-3:])  # (h, w, samples)
                        sy0, sx0 = max(y0 - top, 0), max(x0 - left, 0)
                        sy1 = min(y1 - top, seg.shape[0])
                        sx1 = min(x1 - left, seg.shape[1])
                        dst = out[top + sy0 - y0:top + sy1 - y0,
                                  left + sx0 - x0:left + sx1 - x0]
                        if layout.planes > 1:
                            dst[..., plane] = seg[sy0:sy1, sx0:sx1, 0]
                        else:
                            dst[...] = seg[sy0:sy1, sx0:sx1]
    except Exception as e:  # tifffile / imagecodecs raise several types
        raise ValueError(f'{path}: cannot decode TIFF window {window} '
                         f'({e})') from e
    return out, layout.nodata
