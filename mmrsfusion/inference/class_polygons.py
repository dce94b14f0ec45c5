"""The class map of a scene as polygons: one feature per connected region
of one class, in one GeoPackage layer, optionally simplified as a coverage
(neighbours keep their shared edges: no gaps, no overlaps)."""
import math
from typing import Sequence

import numpy as np
import rasterio
from rasterio import features

#: Name of the polygon layer in the GeoPackage.
LAYER = 'classes'


def import_vector_libraries():
    """``(shapely, pyogrio.raw.write)``, or a ValueError naming what to
    install (they are the ``geo`` extra's, not the runtime's)."""
    try:
        import shapely
        from pyogrio.raw import write
    except ImportError as e:
        raise ValueError(f'--vector needs pyogrio and shapely ({e}): pip '
                         f'install -r requirements/geo.txt (the geo extra)'
                         ) from e
    if not hasattr(shapely, 'coverage_simplify'):
        raise ValueError(f'--vector needs shapely>=2.1 (coverage '
                         f'simplification), found {shapely.__version__}')
    return shapely, write


def check_vector_options(vector, simplify: float) -> None:
    """A ValueError unless ``simplify`` is a tolerance >= 0 given only
    with ``vector``, or if ``vector`` is asked without the libraries:
    before any mapping, not after it."""
    if not simplify >= 0 or (simplify and not vector):
        raise ValueError(f'--simplify: expected a tolerance >= 0 in map '
                         f'units with --vector, got {simplify} (--vector '
                         f'{vector})')
    if vector:
        import_vector_libraries()


def write_class_polygons(raster: str,
                         path: str,
                         classes: Sequence[str],
                         nodata: int,
                         simplify: float = 0.0) -> int:
    """Polygonise band 1 of the class map ``raster`` into the layer
    :data:`LAYER` of the GeoPackage ``path`` (created; in the map's CRS).

    Each feature is a polygon (holes included) of 4-connected pixels of one
    class, with the fields ``class`` (the pixel value) and ``name``
    (``classes[value]``); :data:`nodata` pixels get no feature. Unsimplified,
    the polygons follow the pixel edges exactly: rasterised back they give
    the map.

    GDAL's polygoniser reads the map's band row by row (rasterio's
    ``shapes`` on a band, not an array), so the raster is never in memory;
    the polygons are (the vector output, held until written).

    Args:
        raster (str): Class map (uint8, band 1).
        path (str): GeoPackage to create.
        classes (Sequence[str]): Class names by value.
        nodata (int): Value of pixels without a class.
        simplify (float): Tolerance in map units (converted to pixels by the
            pixel size, the square root of the pixel area); 0 keeps the
            pixel edges. Simplified as one coverage with the scene's outer
            boundary fixed, so neighbours stay edge to edge.

    Returns:
        int: The number of features written.
    """
    shapely, write = import_vector_libraries()
    with rasterio.open(raster) as src:
        transform, crs = src.transform, src.crs
        found = [(shapely.geometry.shape(geom), int(value))
                 for geom, value in features.shapes(rasterio.band(src, 1))]
    geoms = np.array([g for g, _ in found], dtype=object)
    values = np.array([v for _, v in found], dtype=np.int64)
    # GDAL's polygoniser applies the band's geotransform; back in pixel
    # units every vertex is a pixel corner, an exact integer once rounded
    to_pixels = _affine(~transform)
    geoms = shapely.transform(geoms, lambda xy: np.round(to_pixels(xy)))
    if simplify > 0:
        # coverage simplification needs neighbours to share every vertex of
        # a common edge; the polygoniser leaves collinear ones out, so split
        # every edge at each pixel corner (integers again after rounding)
        geoms = shapely.transform(shapely.segmentize(geoms, 1.0), np.round)
        pixel = math.sqrt(abs(transform.determinant))
        geoms = shapely.coverage_simplify(geoms, simplify / pixel,
                                          simplify_boundary=False)
    keep = values != nodata
    geoms = shapely.transform(geoms[keep], _affine(transform))
    values = values[keep]
    names = np.array([str(c) for c in classes] + [''], dtype=object)
    write(path, shapely.to_wkb(geoms),
          field_data=[values.astype(np.int32),
                      names[np.minimum(values, len(classes))]],
          fields=['class', 'name'], driver='GPKG', layer=LAYER,
          geometry_type='Polygon',
          crs=crs.to_wkt() if crs is not None else None)
    return int(keep.sum())


def _affine(transform):
    """``transform`` as a function of (N, 2) coordinate arrays."""
    matrix = np.array([[transform.a, transform.b], [transform.d,
                                                    transform.e]])
    offset = np.array([transform.c, transform.f])
    return lambda xy: xy @ matrix.T + offset
