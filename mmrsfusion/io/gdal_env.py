"""GDAL's settings for reading rasters: one bounded block cache."""
import rasterio

#: GDAL's raster block cache while reading, bytes: bounded per process,
#: dataloader workers included, so that memory does not grow with the scene
#: or the number of files (GDAL's default is 5 % of the RAM in each process).
GDAL_CACHE = 64 * 2**20


def gdal_env(cache_bytes: int = GDAL_CACHE) -> rasterio.Env:
    """A ``rasterio.Env`` with GDAL's block cache bounded to
    ``cache_bytes``."""
    return rasterio.Env(GDAL_CACHEMAX=cache_bytes)
