"""Reading the raw rasters: optical TIFFs, DSMs (with their no-data value),
8-bit nDSMs and colour-coded labels."""
import io
import warnings
from typing import Optional, Tuple

import numpy as np

from .labels import is_colour_label
from .layout import ConversionError
from .raw_file import RawFile


def _read_tiff(raw: RawFile) -> Tuple[np.ndarray, Optional[float]]:
    """Read a TIFF as H x W or H x W x C; also return its GDAL no-data."""
    import tifffile
    src = raw.path if raw.member is None else io.BytesIO(raw.read_bytes())
    try:
        with tifffile.TiffFile(src) as tif:
            series = tif.series[0]
            arr = series.asarray()
            axes = series.axes
            tag = tif.pages[0].tags.get('GDAL_NODATA')
            nodata = None
            if tag is not None:
                try:
                    nodata = float(str(tag.value).strip('\x00 '))
                except ValueError:
                    nodata = None
    except ConversionError:
        raise
    except Exception as e:  # corrupt / truncated / not a TIFF
        raise ConversionError(f'Cannot read TIFF {raw}: {e}') from e
    if axes.startswith('S') and arr.ndim == 3:  # planar: S,Y,X -> Y,X,S
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return np.ascontiguousarray(arr), nodata


def _read_image(raw: RawFile) -> np.ndarray:
    """Read a JPEG/PNG with OpenCV, channels unchanged (BGR order)."""
    import cv2
    buf = np.frombuffer(raw.read_bytes(), dtype=np.uint8)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ConversionError(f'Cannot decode image {raw}.')
    return arr


def read_optical(raw: RawFile, bands: Optional[int] = None) -> np.ndarray:
    """H x W x C optical image in the source's band order."""
    arr, _ = _read_tiff(raw)
    if arr.ndim != 3:
        raise ConversionError(
            f'{raw}: expected a multi-band optical image, got shape '
            f'{arr.shape}.')
    if bands is not None and arr.shape[-1] != bands:
        raise ConversionError(
            f'{raw}: expected {bands} bands, got {arr.shape[-1]} (shape '
            f'{arr.shape}).')
    return arr


def read_dsm(raw: RawFile) -> Tuple[np.ndarray, Optional[float]]:
    """H x W float32 elevation from a TIFF, values unchanged."""
    arr, nodata = _read_tiff(raw)
    if arr.ndim != 2:
        raise ConversionError(
            f'{raw}: expected a single-band DSM, got shape {arr.shape}.')
    if arr.dtype != np.float32:
        if arr.dtype == np.float64:
            warnings.warn(f'{raw}: float64 DSM written as float32.')
        arr = arr.astype(np.float32)
    return arr, nodata


def read_gray(raw: RawFile) -> np.ndarray:
    """H x W uint8 from an 8-bit image (the Potsdam nDSM JPEGs)."""
    import cv2
    arr = _read_image(raw)
    if arr.ndim == 3:
        if arr.shape[-1] == 4:
            arr = arr[..., :3]
        if (arr == arr[..., :1]).all():
            arr = arr[..., 0]
        else:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY)
    if arr.dtype != np.uint8:
        raise ConversionError(
            f'{raw}: expected an 8-bit image, got dtype {arr.dtype}.')
    return np.ascontiguousarray(arr)


def read_colour_label(raw: RawFile) -> np.ndarray:
    """H x W x 3 uint8 RGB colour-coded label."""
    arr, _ = _read_tiff(raw)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.dtype != np.uint8:
        raise ConversionError(
            f'{raw}: expected an RGB colour-coded uint8 label, got shape '
            f'{arr.shape} and dtype {arr.dtype}.')
    return np.ascontiguousarray(arr[..., :3])


def looks_like_colour_label(raw: RawFile) -> bool:
    """Whether the TIFF ``raw`` holds a colour-coded label (see
    :func:`~.labels.is_colour_label`)."""
    return is_colour_label(_read_tiff(raw)[0])
