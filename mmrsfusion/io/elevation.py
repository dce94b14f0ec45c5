"""No-data masks and the per-tile normalisation of elevation rasters (DSM /
nDSM)."""
from typing import Optional, Sequence

import numpy as np

ELEVATION_NORMS = ('minmax', 'zscore', None)


def nodata_mask(arr: np.ndarray, nodata: Sequence[float] = ()) -> np.ndarray:
    """Pixels that are NaN, +-inf or equal to one of ``nodata``."""
    mask = ~np.isfinite(arr)
    for value in nodata:
        mask |= arr == value
    return mask


def check_not_all_nodata(invalid: np.ndarray, path: str, band: int,
                         nodata: Sequence[float]) -> None:
    """Raise a ValueError naming ``path`` when every pixel of elevation
    band ``band`` is no-data (``invalid``, from :func:`nodata_mask`): such
    a tile has no heights to normalise by."""
    if invalid.all():
        raise ValueError(
            f'{path}: elevation band {band} is entirely no-data (all '
            f'{invalid.size} pixels are NaN/inf or one of {list(nodata)}); '
            f'cannot normalise this tile')


def normalize_elevation(arr: np.ndarray,
                        mode: Optional[str] = 'minmax',
                        nodata: Sequence[float] = (-9999., ),
                        path: str = '<array>',
                        value_range: Optional[Sequence[float]] = None
                        ) -> np.ndarray:
    """Normalise an elevation tile (DSM / nDSM), each band on its own.

    No-data pixels (NaN, +-inf and the values in ``nodata``) are excluded
    from the statistics and set to 0 in the output.

    Args:
        arr (ndarray): (H, W, C) elevation values, any numeric dtype.
        mode (str | None): ``'minmax'``: ``(x - min) / (max - min)``, in
            [0, 1]; ``'zscore'``: ``(x - mean) / std``; ``None``: values kept
            (only no-data mapped to 0). A flat band (max == min, or std 0)
            gives 0 everywhere.
        nodata (Sequence[float]): No-data values besides NaN / inf.
        path (str): File name used in error messages.
        value_range (tuple, optional): ``(min, max)`` to use for
            ``'minmax'`` instead of the array's own, e.g. the range of the
            whole tile a clip or window was cut from (then an all-no-data
            band is allowed: it becomes 0).

    Returns:
        ndarray: float32 array of the input's shape.

    Raises:
        ValueError: A band is all no-data (without ``value_range``: a clip
            of a tile with valid heights is all 0 instead), or ``mode`` is
            unknown.
    """
    if mode not in ELEVATION_NORMS:
        raise ValueError(f'elevation_norm: expected one of {ELEVATION_NORMS}'
                         f', got {mode!r}')
    arr = arr.astype(np.float64)
    out = np.zeros(arr.shape, np.float32)
    for c in range(arr.shape[-1]):
        band = arr[..., c]
        invalid = nodata_mask(band, nodata)
        if invalid.all() and value_range is not None:
            continue  # a clip in the no-data part of a tile: all 0
        check_not_all_nodata(invalid, path, c, nodata)
        valid = band[~invalid]
        if mode == 'minmax':
            low, high = (valid.min(), valid.max()) if value_range is None \
                else (float(value_range[0]), float(value_range[1]))
            res = (band - low) / (high - low) if high > low else \
                np.zeros_like(band)
        elif mode == 'zscore':
            mean, std = valid.mean(), valid.std()
            res = (band - mean) / std if std > 0 else np.zeros_like(band)
        else:
            res = band.copy()
        res[invalid] = 0
        out[..., c] = res
    return out
