"""Raster I/O shared by the loading transforms, the converters and scene
inference; imports only io and utils (the bottom layer). The rasterio
readers, :mod:`.raster_scene` (scenes) and :mod:`.raster_window` (training
windows), are imported from their modules."""
from .elevation import (ELEVATION_NORMS, check_not_all_nodata, nodata_mask,
                        normalize_elevation)
from .output_guard import check_outputs
from .png import write_png
from .raster import TIFF_SUFFIXES, read_raster, tiff_nodata
from .verify import WrittenFileError, verify_written

__all__ = [
    'ELEVATION_NORMS', 'check_not_all_nodata', 'nodata_mask',
    'normalize_elevation', 'check_outputs', 'write_png', 'TIFF_SUFFIXES',
    'read_raster', 'tiff_nodata', 'WrittenFileError', 'verify_written'
]
