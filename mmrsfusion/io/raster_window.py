"""Windows of local rasters read with rasterio (GDAL's windowed reads and
block cache), the files kept open per process: what the windowed training
loader reads."""
import os
import warnings
from collections import OrderedDict
from typing import Optional, Tuple

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window as RioWindow
from .gdal_env import GDAL_CACHE, gdal_env

Window = Tuple[int, int, int, int]  # y0, y1, x0, x1

#: Files kept open per process (each dataloader worker keeps its own).
OPEN_FILES = 64
class WindowReader:
    """Reads ``[y0:y1, x0:x1]`` of local rasters (any GDAL format; TIFFs
    tiled by the converters cost a few tiles per window), keeping the last
    :data:`OPEN_FILES` files open so that their headers are parsed once and
    GDAL's block cache (bounded to :data:`GDAL_CACHE`) serves overlapping
    windows.

    Files are opened lazily in the process that reads them: a reader
    pickled or forked into dataloader workers opens its own files there
    (open handles are never shared across processes). A file changed on
    disk (modification time, size) is reopened.
    """

    def __init__(self, open_files: int = OPEN_FILES,
                 cache_bytes: int = GDAL_CACHE) -> None:
        self.open_files = open_files
        self.cache_bytes = cache_bytes
        self._open: OrderedDict = OrderedDict()
        self._pid: Optional[int] = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_open=OrderedDict(), _pid=None)
        return state

    def _dataset(self, path: str):
        if self._pid != os.getpid():  # a new (forked) process: own files
            # forked handles share the parent's file offsets: never read them
            self._open, self._pid = OrderedDict(), os.getpid()
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)
        entry = self._open.get(path)
        if entry is not None and entry[0] == version:
            self._open.move_to_end(path)
            return entry[1]
        if entry is not None:
            entry[1].close()
        try:
            with warnings.catch_warnings():  # plain (non-geo) TIFFs are fine
                warnings.simplefilter('ignore', NotGeoreferencedWarning)
                src = rasterio.open(path)
        except RasterioIOError as e:
            raise ValueError(f'{path}: cannot read as a raster ({e})') from e
        self._open[path] = (version, src)
        self._open.move_to_end(path)
        if len(self._open) > self.open_files:
            self._open.popitem(last=False)[1][1].close()
        return src

    def shape(self, path: str) -> Tuple[int, int]:
        """(H, W) of a raster, from its header."""
        src = self._dataset(path)
        return src.height, src.width

    def tiled(self, path: str) -> bool:
        """Whether the raster is stored in tiles (else strips: a window
        decodes whole rows)."""
        return bool(self._dataset(path).profile.get('tiled', False))

    def read(self, path: str,
             window: Window) -> Tuple[np.ndarray, Optional[float]]:
        """Read the pixels ``[y0:y1, x0:x1]`` (clipped to the raster).

        Returns:
            tuple: ``(array (h, w, bands) in the stored dtype, the file's
            no-data value (GDAL_NODATA) or None)``: the values of a full
            read (:func:`mmrsfusion.io.read_raster`) of the same pixels.

        Raises:
            ValueError: The file cannot be read (named).
        """
        src = self._dataset(path)
        y0, y1, x0, x1 = window
        y0, y1 = max(y0, 0), min(y1, src.height)
        x0, x1 = max(x0, 0), min(x1, src.width)
        try:
            with gdal_env(self.cache_bytes):
                arr = src.read(window=RioWindow(x0, y0, x1 - x0, y1 - y0))
        except RasterioIOError as e:
            raise ValueError(f'{path}: cannot read window {window} '
                             f'({e})') from e
        return np.ascontiguousarray(arr.transpose(1, 2, 0)), src.nodata
