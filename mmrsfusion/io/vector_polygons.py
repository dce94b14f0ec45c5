"""Polygons of a vector file (GeoPackage, GeoJSON, Shapefile, any OGR
format), read window by window (pyogrio; GeoPackages by feature id over an
open SQLite connection): only their bounding boxes stay in memory."""
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np

from .geopackage import GeoPackageLayer

#: Shapely's type ids of the geometries accepted (Polygon, MultiPolygon).
POLYGON_TYPES = (3, 6)
#: Margin added on each side of a window's bounding box in the file's CRS,
#: as a fraction of its size: reprojected, a window's edges may bow out of
#: the box of their densified corners.
BOX_MARGIN = 0.01

Span = Tuple[int, int, int, int]  # (y0, y1, x0, x1), grid pixels


class VectorPolygons:
    """The (multi)polygons of the first layer of the vector file ``path``
    with a class each, served in ``crs`` for one window at a time.

    At construction only the file's metadata and the features' bounding
    boxes (in the file's CRS: 32 bytes and a feature id each) are read;
    :meth:`read` then reads the features whose boxes meet the asked
    bounds, by feature id, and reprojects them to ``crs``. Memory grows
    with the polygons of a window, not of the file. A GeoPackage's features
    are read from its SQLite tables over a connection kept open in each
    process (:class:`~mmrsfusion.io.geopackage.GeoPackageLayer`: the WKB
    OGR would return, without reopening the file at every window); other
    formats through OGR, opened at each read. GeoJSON is read by
    OGR as every other format (its CRS: a legacy ``crs`` member, else
    WGS 84 as RFC 7946 says); OGR parses a whole GeoJSON file at every
    open, so large label sets read faster as GeoPackage (indexed by
    feature id and R-tree).

    Args:
        path (str): The vector file.
        crs: The CRS of the geometries returned (rasterio ``CRS``).
        attribute (str, optional): The feature property holding the class
            (an integer); None gives every polygon class 1.
        fixed (int, optional): One class for every polygon (``attribute``
            is then not read).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is unreadable, is not a polygon layer, or has
            no ``attribute`` field (its fields named); feature errors
            (another geometry type, no class value) are raised by
            :meth:`read`, naming the feature.
    """

    def __init__(self, path: str, crs, attribute: Optional[str] = None,
                 fixed: Optional[int] = None) -> None:
        from rasterio.crs import CRS
        pyogrio = import_pyogrio(path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'vector file {path} does not exist')
        try:
            info = pyogrio.read_info(path)
            fids, boxes = pyogrio.read_bounds(path)
        except Exception as e:  # pyogrio's DataSourceError and kin
            raise ValueError(f'{path}: not a readable vector file ({e})'
                             ) from e
        kind = str(info.get('geometry_type') or '')
        if kind.replace('3D ', '').lower() not in (
                'polygon', 'multipolygon', 'unknown', ''):
            raise ValueError(f'{path}: a layer of {kind} geometries; labels '
                             f'and areas of interest are polygons')
        self.attribute = None if fixed is not None else attribute
        if self.attribute is not None and \
                self.attribute not in list(info['fields']):
            raise ValueError(f'{path}: no {self.attribute!r} property (the '
                             f'class); its properties are '
                             f'{sorted(info["fields"])}; or set label_class')
        self.path, self.crs, self.fixed = path, crs, fixed
        self.src_crs = CRS.from_user_input(info['crs'] or 'EPSG:4326')
        self.fids = np.asarray(fids, np.int64)
        self.boxes = np.asarray(boxes, np.float64).T.reshape(-1, 4)
        self._gpkg = GeoPackageLayer(
            path, info['layer_name'], info['fid_column'],
            info['geometry_name']) if info.get('driver') == 'GPKG' and \
            info.get('fid_column') and info.get('geometry_name') else None

    def __len__(self) -> int:
        return len(self.fids)

    def read(self, bounds: Optional[Tuple[float, float, float, float]] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
        """``(geometries, classes)`` of the features whose bounding boxes
        meet ``bounds`` (left, bottom, right, top in ``crs``; None: all),
        in file order: shapely (multi)polygons in ``crs`` (object (N,))
        and their classes (int64 (N,))."""
        import shapely
        from pyogrio.raw import read
        boxes, fids = self.boxes, self.fids
        if bounds is not None and len(fids):
            left, bottom, right, top = self._file_bounds(bounds)
            keep = ((boxes[:, 0] <= right) & (boxes[:, 2] >= left) &
                    (boxes[:, 1] <= top) & (boxes[:, 3] >= bottom))
            fids = fids[keep]
        if not len(fids):
            return np.empty(0, object), np.empty(0, np.int64)
        if self._gpkg is not None:
            wkb, column = self._gpkg.read(fids, self.attribute)
            field_data = [column]
        else:
            columns = [] if self.attribute is None else [self.attribute]
            _, _, wkb, field_data = read(self.path, fids=fids,
                                         columns=columns)
        geoms = shapely.from_wkb(wkb)
        types = shapely.get_type_id(geoms)
        bad = ~np.isin(types, POLYGON_TYPES) & ~shapely.is_missing(geoms)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f'{self.path}: feature {int(fids[i])} is a '
                             f'{geoms[i].geom_type}; labels and areas of '
                             f'interest are polygons')
        if self.fixed is not None or self.attribute is None:
            values = np.full(len(geoms), 1 if self.fixed is None
                             else self.fixed, np.int64)
        else:
            column = field_data[0]
            if column.dtype == object:
                missing = np.array([v is None for v in column], bool)
            else:  # integer fields with nulls come as float, NaN for null
                missing = np.isnan(column) if column.dtype.kind == 'f' \
                    else np.zeros(len(column), bool)
            if missing.any():
                i = int(np.flatnonzero(missing)[0])
                raise ValueError(f'{self.path}: feature {int(fids[i])} has '
                                 f'no {self.attribute!r} value (the class); '
                                 f'or set label_class')
            values = np.asarray(column).astype(np.int64)
        present = ~shapely.is_missing(geoms)
        geoms, values = geoms[present], values[present]
        if self.src_crs != self.crs and len(geoms):
            geoms = shapely.transform(geoms, self._to_crs)
        return geoms, values

    def rasterize(self, transform, span: Span, fill: int,
                  all_touched: bool = False) -> np.ndarray:
        """The polygons burnt into ``span`` of the grid ``transform`` in
        ``crs`` (uint8 (h, w), ``fill`` where none; later features over
        earlier ones; a pixel is inside when its centre is, unless
        ``all_touched``); only the window's polygons are read."""
        from rasterio import features, windows
        y0, y1, x0, x1 = span
        win = windows.Window(x0, y0, x1 - x0, y1 - y0)
        geoms, values = self.read(windows.bounds(win, transform))
        if not len(geoms):
            return np.full((y1 - y0, x1 - x0), fill, np.uint8)
        return features.rasterize(
            zip(polygon_mappings(geoms), values.tolist()),
            out_shape=(y1 - y0, x1 - x0),
            transform=windows.transform(win, transform), fill=fill,
            all_touched=all_touched, dtype='uint8')

    def _file_bounds(self, bounds):
        """``bounds`` (in ``crs``) as a box in the file's CRS, widened by
        :data:`BOX_MARGIN`."""
        from rasterio.warp import transform_bounds
        if self.src_crs != self.crs:
            bounds = transform_bounds(self.crs, self.src_crs, *bounds,
                                      densify_pts=21)
        left, bottom, right, top = bounds
        dx, dy = (right - left) * BOX_MARGIN, (top - bottom) * BOX_MARGIN
        return left - dx, bottom - dy, right + dx, top + dy

    def _to_crs(self, xy: np.ndarray) -> np.ndarray:
        from rasterio.warp import transform
        xs, ys = transform(self.src_crs, self.crs, xy[:, 0], xy[:, 1])
        return np.column_stack([xs, ys])


def polygon_mappings(geoms: np.ndarray) -> List[dict]:
    """GeoJSON-like mappings of (multi)polygons (object (N,)): their
    ``__geo_interface__`` (the same rings, in order, and x, y coordinates),
    built with shapely's vectorised accessors instead of its Python loop
    over every vertex (what rasterising spent most of its time on)."""
    import shapely
    parts, part_geom = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords = shapely.get_coordinates(rings)
    ends = np.cumsum(shapely.get_num_coordinates(rings))[:-1]
    part_rings = [[] for _ in parts]
    for ring, p in zip(np.split(coords, ends) if len(rings) else [],
                       ring_part.tolist()):
        part_rings[p].append(ring.tolist())
    geom_parts = [[] for _ in geoms]
    for p, g in enumerate(part_geom.tolist()):
        geom_parts[g].append(part_rings[p])
    return [dict(type='Polygon', coordinates=ps[0] if ps else [])
            if kind == 3 else dict(type='MultiPolygon', coordinates=ps)
            for kind, ps in zip(shapely.get_type_id(geoms).tolist(),
                                geom_parts)]


def import_pyogrio(path: str):
    """pyogrio, or an ImportError naming the file and what to install."""
    try:
        import pyogrio
        import shapely  # noqa: F401 (geometries of pyogrio.raw.read)
    except ImportError as e:
        raise ImportError(f'{path}: reading vector labels / areas of '
                          f'interest needs pyogrio and shapely ({e}): pip '
                          f'install -r requirements/geo.txt') from e
    return pyogrio
