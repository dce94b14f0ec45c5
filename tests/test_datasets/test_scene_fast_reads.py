"""The scene readers' fast paths give what the general ones give: inputs on
another grid warped window by window (``WindowWarp``) against the
WarpedVRT, GeoPackage features read over an open SQLite connection
(``GeoPackageLayer``) against OGR (pyogrio), and that connection kept per
process (pickled / forked dataloader workers open their own)."""
import json
import os
import pickle
import sqlite3

import numpy as np
import pytest

pytest.importorskip('rasterio')
pytest.importorskip('pyogrio')

from mmengine.registry import init_default_scope  # noqa: E402
import rasterio  # noqa: E402
import shapely  # noqa: E402
from rasterio import windows  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.vrt import WarpedVRT  # noqa: E402
from rasterio.windows import Window  # noqa: E402

import mmrsfusion  # noqa: E402,F401
from mmrsfusion.datasets import SceneDataset  # noqa: E402
from mmrsfusion.datasets.isprs import ISPRS_CLASSES  # noqa: E402
from mmrsfusion.datasets.synthetic_scene import (  # noqa: E402
    SCENE_CRS, write_synthetic_scene_set)
from mmrsfusion.io.raster_scene import RasterScene, WindowWarp  # noqa: E402
from mmrsfusion.io.vector_polygons import VectorPolygons  # noqa: E402
from mmrsfusion.utils import ModalitySpec  # noqa: E402

SPEC = ModalitySpec.build([
    dict(name='rgb', channels=3, kind='optical', mean=[0.] * 3,
         std=[1.] * 3),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.], std=[1.]),
], 'SPEC')
#: Windows of the 160 x 224 scene: inside, at every edge and corner, over
#: the east strip without DSM, one the size of the scene.
SPANS = [(16, 80, 24, 120), (0, 64, 0, 64), (96, 160, 160, 224),
         (0, 40, 150, 224), (120, 160, 0, 224), (0, 160, 0, 224),
         (37, 101, 91, 155)]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenes')
    write_synthetic_scene_set(str(root), num_scenes=1, height=160,
                              width=224)
    return root


def _vrt_read(ds, ref, nodata, span):
    """Values (h, w) and validity of ``ds`` on ``ref``'s grid read as
    before: a WarpedVRT read and its dataset mask."""
    y0, y1, x0, x1 = span
    win = Window(x0, y0, x1 - x0, y1 - y0)
    with WarpedVRT(ds, crs=ref.crs, transform=ref.transform,
                   width=ref.width, height=ref.height,
                   resampling=Resampling.bilinear,
                   src_nodata=nodata, nodata=nodata) as vrt:
        return vrt.read(1, window=win), vrt.dataset_mask(window=win) > 0


@pytest.mark.parametrize('nodata', [-9999., float('nan')])
def test_window_warp_equals_warped_vrt(root, tmp_path, nodata):
    """A DSM on another grid (4x coarser, shifted, short in the east) read
    window by window gives the WarpedVRT's values and dataset mask, bit
    for bit, with a numeric and a NaN no-data value."""
    scene = root / 'scene_0'
    dsm = str(scene / 'dsm.tif')
    if np.isnan(nodata):  # the same DSM with NaN as no-data
        with rasterio.open(dsm) as src:
            arr, profile = src.read(), src.profile
        arr[arr == -9999.] = np.nan
        profile.update(nodata=nodata)
        dsm = str(tmp_path / 'dsm_nan.tif')
        with rasterio.open(dsm, 'w', **profile) as dst:
            dst.write(arr)
    with RasterScene(dict(rgb=str(scene / 'rgb.tif'), dsm=dsm),
                     SPEC) as rs:
        assert isinstance(rs._readers['dsm'], WindowWarp)
        ref, ds = rs._datasets['rgb'], rs._datasets['dsm']
        seen_invalid = False
        for span in SPANS:
            vrt_arr, vrt_valid = _vrt_read(ds, ref, nodata, span)
            # the reader itself (any kind), then the scene's elevation rule
            y0, y1, x0, x1 = span
            raw, raw_valid = rs._readers['dsm'].read(
                [1], Window(x0, y0, x1 - x0, y1 - y0))
            assert np.array_equal(raw_valid, vrt_valid), span
            assert np.array_equal(raw[0], vrt_arr, equal_nan=True), span
            arr, valid = rs.read('dsm', span)
            assert np.array_equal(valid, vrt_valid), span
            assert np.array_equal(arr[..., 0][valid], vrt_arr[valid]), span
            assert np.isnan(arr[~valid]).all()
            seen_invalid |= (~valid).any()
        assert seen_invalid  # the no-data strip was read


def test_masked_source_warped_with_vrt(root, tmp_path):
    """A source with an internal mask (not only a no-data value) keeps the
    WarpedVRT, which honours that mask."""
    scene = root / 'scene_0'
    with rasterio.open(scene / 'dsm.tif') as src:
        arr, profile = src.read(), src.profile
    profile.pop('nodata')
    path = str(tmp_path / 'dsm_masked.tif')
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), \
            rasterio.open(path, 'w', **profile) as dst:
        dst.write(arr)
        dst.write_mask((arr[0] != -9999.).astype(np.uint8) * 255)
    with RasterScene(dict(rgb=str(scene / 'rgb.tif'), dsm=path),
                     SPEC) as rs:
        assert isinstance(rs._readers['dsm'], WarpedVRT)
        _, valid = rs.read('dsm', (0, 160, 0, 224))
        assert not valid.all() and valid.any()


def _gpkg(root, tmp_path, null_class=False):
    """The scene's label polygons written by OGR (pyogrio) as a GeoPackage,
    optionally with feature 3's class set to NULL."""
    from pyogrio.raw import write
    with open(root / 'scene_0' / 'labels.geojson') as f:
        features = json.load(f)['features']
    path = str(tmp_path / 'labels.gpkg')
    write(path, shapely.to_wkb(np.array(
        [shapely.geometry.shape(ft['geometry']) for ft in features])),
        field_data=[np.array([ft['properties']['class'] for ft in features],
                             np.int32)],
        fields=['class'], driver='GPKG', geometry_type='Polygon',
        crs=SCENE_CRS)
    if null_class:
        con = sqlite3.connect(path)
        with con:  # without GDAL's R-tree triggers (SQL functions of GDAL)
            for (name, ) in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                    " AND tbl_name = 'labels'").fetchall():
                con.execute(f'DROP TRIGGER "{name}"')
            con.execute('UPDATE labels SET class = NULL WHERE fid = 3')
        con.close()
    return path


def _windows_bounds(path):
    with rasterio.open(path) as src:
        return [windows.bounds(
            Window(x0, y0, x1 - x0, y1 - y0), src.transform)
            for y0, y1, x0, x1 in SPANS] + [None]


def test_geopackage_reads_equal_ogr(root, tmp_path):
    """GeoPackage features read from its tables are OGR's: the same
    geometries (WKB) in the same order and classes, for windows and for
    the whole layer, with and without the class attribute."""
    path = _gpkg(root, tmp_path)
    bounds = _windows_bounds(root / 'scene_0' / 'rgb.tif')
    for attribute, fixed in (('class', None), (None, None), ('class', 4)):
        fast = VectorPolygons(path, CRS.from_user_input(
            SCENE_CRS), attribute, fixed)
        ogr = VectorPolygons(path, fast.crs, attribute, fixed)
        ogr._gpkg = None
        assert fast._gpkg is not None
        for b in bounds:
            g1, c1 = fast.read(b)
            g2, c2 = ogr.read(b)
            assert len(g1) and np.array_equal(c1, c2)
            assert list(shapely.to_wkb(g1)) == list(shapely.to_wkb(g2))


def test_geopackage_missing_class_named(root, tmp_path):
    """A feature without class is named as OGR's read names it."""
    path = _gpkg(root, tmp_path, null_class=True)
    fast = VectorPolygons(path, CRS.from_user_input(SCENE_CRS),
                          'class')
    ogr = VectorPolygons(path, fast.crs, 'class')
    ogr._gpkg = None
    for reader in (fast, ogr):
        with pytest.raises(ValueError, match="feature 3 has no 'class'"):
            reader.read()


def test_geopackage_connection_per_process(root, tmp_path):
    """The SQLite connection stays with its process: a pickled copy opens
    its own, and so does a forked dataloader worker, whose windows equal
    the parent's."""
    from torch.utils.data import DataLoader
    init_default_scope('mmseg')
    path = _gpkg(root, tmp_path)
    scene = root / 'scene_0'
    with open(tmp_path / 'scenes.csv', 'w') as f:
        f.write(f'name,rgb,dsm,labels\ns,{scene / "rgb.tif"},'
                f'{scene / "dsm.tif"},{path}\n')
    ds = SceneDataset(
        ann_file=str(tmp_path / 'scenes.csv'), modalities=SPEC,
        crop_size=(64, 64), test_mode=True, pipeline=[],
        metainfo=dict(classes=ISPRS_CLASSES))
    layer = ds.scenes[0]['polygons']._gpkg
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    parent = [ds.read_window(d['scene'], tuple(d['window']))['gt_seg_map']
              for d in infos]
    assert layer._con is not None and layer._pid == os.getpid()
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.scenes[0]['polygons']._gpkg._con is None

    inherited = layer._con

    class Labels:
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            d = infos[i]
            gt = ds.read_window(d['scene'], tuple(d['window']))['gt_seg_map']
            return gt, os.getpid(), layer._pid, layer._con is inherited

    loader = DataLoader(Labels(), batch_size=None, num_workers=1,
                        multiprocessing_context='fork')
    for (gt, pid, layer_pid, same), expected in zip(loader, parent):
        assert pid != os.getpid() and layer_pid == pid and not same
        assert np.array_equal(gt, expected)
    assert layer._con is inherited and layer._pid == os.getpid()


def _lists(obj):
    """Tuples as lists, recursively (GeoJSON-like mappings compared)."""
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


def test_polygon_mappings_equal_geo_interface():
    """The mappings handed to rasterio are shapely's ``__geo_interface__``:
    polygons with holes, multipolygons, empty ones (skipped by rasterio
    either way), in order."""
    from mmrsfusion.io.vector_polygons import polygon_mappings
    square = shapely.box(0, 0, 10, 10)
    holed = square.difference(shapely.box(2, 2, 4, 4)).difference(
        shapely.box(6, 6, 8, 9))
    multi = shapely.MultiPolygon([holed, shapely.box(20, 0, 25, 3)])
    geoms = np.array([square, shapely.Polygon(), holed, multi,
                      shapely.MultiPolygon(), shapely.box(-5, -5, 0, 1)],
                     object)
    assert polygon_mappings(geoms) == [_lists(g.__geo_interface__)
                                       for g in geoms]
    assert polygon_mappings(np.empty(0, object)) == []
