"""Reading rasters whole: any TIFF with ``tifffile``, other image formats
with OpenCV, band ``i`` of the array being band ``i`` of the file."""
import io
import os.path as osp
from typing import Optional

import cv2
import mmengine.fileio as fileio
import numpy as np
import tifffile

TIFF_SUFFIXES = ('.tif', '.tiff')


def tiff_nodata(page) -> Optional[float]:
    """The ``GDAL_NODATA`` value of a ``tifffile`` page (None if absent or
    not a number)."""
    tag = page.tags.get('GDAL_NODATA')
    if tag is None:
        return None
    try:
        return float(str(tag.value).strip('\x00 '))
    except ValueError:
        return None


def read_raster(path: str,
                backend_args: Optional[dict] = None,
                with_nodata: bool = False):
    """Read a raster file as an (H, W, C) array in its stored dtype.

    TIFF files are read with ``tifffile`` (any dtype and band count, pixel-
    or band-interleaved); other formats (PNG, JPG, ...) with OpenCV, their
    colour channels reordered from OpenCV's BGR(A) to the stored RGB(A), so
    that band ``i`` of the array is band ``i`` of the file in every format.

    With ``with_nodata=True`` returns ``(array, nodata)``, ``nodata`` being
    the TIFF's ``GDAL_NODATA`` value (None if absent or not a TIFF).

    Raises:
        FileNotFoundError: The file does not exist (local paths).
        ValueError: The file cannot be decoded or is not a 2-D raster.
    """
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    buf = fileio.get(path, backend_args=backend_args)
    nodata = None
    if osp.splitext(path)[1].lower() in TIFF_SUFFIXES:
        try:
            with tifffile.TiffFile(io.BytesIO(buf)) as tif:
                series = tif.series[0]
                arr, axes = series.asarray(), series.axes
                nodata = tiff_nodata(tif.pages[0])
        except Exception as e:  # tifffile raises several types
            raise ValueError(f'{path}: cannot read as TIFF ({e})') from e
        if arr.ndim == 3 and 'Y' in axes and 'X' in axes:
            band_axis = [i for i, a in enumerate(axes) if a not in 'YX'][0]
            arr = np.moveaxis(arr, band_axis, -1)
    else:
        arr = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ValueError(f'{path}: cannot decode as an image')
        if arr.ndim == 3 and arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f'{path}: expected a 2-D raster (H, W) or '
                         f'(H, W, bands), got an array of shape {arr.shape}')
    return (arr, nodata) if with_nodata else arr
