"""SceneDataset labels and areas of interest from GeoPackage and Shapefile
(read with pyogrio, as GeoJSON is), in the scene's CRS and in another one,
against the same polygons as GeoJSON."""
import csv
import json
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('rasterio')
pytest.importorskip('pyogrio')

from mmengine.registry import init_default_scope  # noqa: E402
import shapely  # noqa: E402
from pyogrio.raw import write  # noqa: E402
from rasterio.warp import transform_geom  # noqa: E402

import mmrsfusion  # noqa: E402,F401
from mmrsfusion.datasets import SceneDataset  # noqa: E402
from mmrsfusion.datasets.isprs import ISPRS_CLASSES  # noqa: E402
from mmrsfusion.io.vector_polygons import VectorPolygons  # noqa: E402
from mmrsfusion.datasets.synthetic_scene import (  # noqa: E402
    SCENE_CRS, write_synthetic_scene_set)

SPEC = [dict(name='rgb', channels=3, kind='optical'),
        dict(name='dsm', channels=1, kind='elevation')]


def write_vector(src_geojson, path, driver, crs):
    """The features of ``src_geojson`` (in :data:`SCENE_CRS`) written with
    pyogrio as ``driver`` in ``crs``."""
    with open(src_geojson) as f:
        features = json.load(f)['features']
    geoms = [shapely.geometry.shape(
        ft['geometry'] if crs == SCENE_CRS else transform_geom(
            SCENE_CRS, crs, ft['geometry'], precision=-1))
        for ft in features]
    fields = list(features[0]['properties'])
    write(path, shapely.to_wkb(np.array(geoms, object)),
          field_data=[np.array([ft['properties'][k] for ft in features],
                               np.int32) for k in fields],
          fields=fields, driver=driver, geometry_type='Polygon', crs=crs)
    return path


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenes')
    write_synthetic_scene_set(str(root), num_scenes=1, height=128, width=160)
    scene = root / 'scene_0'
    write_vector(scene / 'labels.geojson', str(scene / 'labels.gpkg'),
                 'GPKG', SCENE_CRS)
    write_vector(scene / 'aoi.geojson', str(scene / 'aoi.gpkg'), 'GPKG',
                 SCENE_CRS)
    # a Shapefile in geographic coordinates: reprojected when read
    write_vector(scene / 'labels.geojson', str(scene / 'labels.shp'),
                 'ESRI Shapefile', 'EPSG:4326')
    write_vector(scene / 'aoi.geojson', str(scene / 'aoi.shp'),
                 'ESRI Shapefile', 'EPSG:4326')
    return root


def windows(root, labels, aoi):
    name = f'{labels}_{aoi}.csv'.replace('.', '_') + '.csv'
    with open(root / name, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['name', 'rgb', 'dsm', 'labels', 'aoi'])
        writer.writerow(['scene_0', 'scene_0/rgb.tif', 'scene_0/dsm.tif',
                         f'scene_0/{labels}', f'scene_0/{aoi}'])
    init_default_scope('mmseg')
    ds = SceneDataset(ann_file=name, data_root=str(root), modalities=SPEC,
                      crop_size=(48, 48), test_mode=True, pipeline=[],
                      metainfo=dict(classes=ISPRS_CLASSES))
    return [ds.read_window(ds.get_data_info(i)['scene'],
                           tuple(ds.get_data_info(i)['window']))['gt_seg_map']
            for i in range(len(ds))]


def test_geopackage_labels_and_aoi_equal_geojson(root):
    want = windows(root, 'labels.geojson', 'aoi.geojson')
    got = windows(root, 'labels.gpkg', 'aoi.gpkg')
    assert len(got) == len(want) > 1
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert any((w != 255).any() for w in want)


def test_shapefile_in_another_crs_equals_geojson(root):
    """Labels (edges on pixel edges: every pixel centre 1/2 pixel away)
    equal after the round trip through degrees; the AOI's slanted edges
    pass arbitrarily close to pixel centres: a few of those may flip
    (measured: 2 of 18432 pixels)."""
    want = windows(root, 'labels.geojson', 'aoi.geojson')
    got = windows(root, 'labels.shp', 'aoi.geojson')
    assert len(got) == len(want) > 1
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    got = windows(root, 'labels.geojson', 'aoi.shp')
    differ = sum(int((a != b).sum()) for a, b in zip(got, want))
    assert differ <= 1e-3 * sum(w.size for w in want)


def test_shapefile_read_in_the_scene_crs(root):
    """The Shapefile's polygons (EPSG:4326) come back in the scene's CRS
    within a millimetre of the GeoJSON's."""
    from rasterio.crs import CRS
    crs = CRS.from_user_input(SCENE_CRS)
    shp, shp_class = VectorPolygons(str(root / 'scene_0' / 'labels.shp'),
                                    crs, 'class').read()
    ref, ref_class = VectorPolygons(str(root / 'scene_0' / 'labels.geojson'),
                                    crs, 'class').read()
    assert len(ref) > 1 and np.array_equal(shp_class, ref_class)
    assert np.allclose(shapely.bounds(shp), shapely.bounds(ref), atol=1e-3)


def test_missing_class_attribute_named(root):
    path = str(root / 'scene_0' / 'aoi.gpkg')
    from rasterio.crs import CRS
    with pytest.raises(ValueError, match="aoi.gpkg: no 'class' property"):
        VectorPolygons(path, CRS.from_user_input(SCENE_CRS), 'class')


def test_points_refused_named(root, tmp_path):
    """A layer of points is refused when the dataset opens it, naming the
    file and its geometry type."""
    from rasterio.crs import CRS
    path = str(tmp_path / 'points.gpkg')
    write(path, shapely.to_wkb(np.array([shapely.Point(366010, 5807990)],
                                        object)),
          field_data=[np.array([1], np.int32)], fields=['class'],
          driver='GPKG', geometry_type='Point', crs=SCENE_CRS)
    with pytest.raises(ValueError, match=r'points.gpkg: a layer of Point'):
        VectorPolygons(path, CRS.from_user_input(SCENE_CRS), 'class')
