"""Reading back what a converter wrote: every written raster is re-read
and compared with the array it was meant to hold, so that no converter
leaves a file that cannot be read or holds other data (a truncated copy, a
failed encoder)."""
import numpy as np

from .raster import read_raster


class WrittenFileError(ValueError):
    """A file just written cannot be read back as the array it should
    hold; the message names the file and what was expected."""


def verify_written(path: str, expected: np.ndarray) -> np.ndarray:
    """Re-read the raster ``path`` and check that it holds ``expected``
    (H x W or H x W x C): readable, same size, band count, dtype and
    values (NaN equal to NaN).

    Returns:
        np.ndarray: The array read back, H x W x C.

    Raises:
        WrittenFileError: Naming ``path``, what it holds and what was
            expected.
    """
    want = expected[..., None] if expected.ndim == 2 else expected
    try:
        arr = read_raster(path)
    except (OSError, ValueError) as e:
        raise WrittenFileError(
            f'{path}: written but cannot be read back ({e})') from e
    if arr.shape != want.shape or arr.dtype != want.dtype:
        raise WrittenFileError(
            f'{path}: written file holds {arr.shape[0]} x {arr.shape[1]} x '
            f'{arr.shape[2]} {arr.dtype}, expected {want.shape[0]} x '
            f'{want.shape[1]} x {want.shape[2]} {want.dtype} (H x W x bands)')
    if not np.array_equal(arr, want,
                          equal_nan=np.issubdtype(arr.dtype, np.floating)):
        raise WrittenFileError(
            f'{path}: written file holds other values than were written')
    return arr
