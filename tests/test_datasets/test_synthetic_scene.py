"""The synthetic GeoTIFF scene of tools/misc/make_synthetic_dataset.py
--geotiff-scene (input of tools/predict_scene.py)."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip('rasterio')

from mmrsfusion.datasets.isprs import ISPRS_PALETTE  # noqa: E402
from mmrsfusion.datasets.synthetic import NODATA  # noqa: E402
from mmrsfusion.datasets.synthetic_scene import (  # noqa: E402
    SCENE_CRS, write_synthetic_scene)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def test_scene_files(tmp_path):
    paths = write_synthetic_scene(str(tmp_path), 300, 200, dsm_factor=4,
                                  tile=128)
    with rasterio.open(paths['rgb']) as rgb, \
            rasterio.open(paths['dsm']) as dsm, \
            rasterio.open(paths['label']) as label:
        assert rgb.crs.to_string() == SCENE_CRS == dsm.crs.to_string()
        assert (rgb.count, rgb.dtypes[0], rgb.shape) == (3, 'uint8',
                                                         (300, 200))
        assert rgb.res == (0.25, 0.25) and dsm.res == (1.0, 1.0)
        assert dsm.shape == (75, 50) and dsm.nodata == NODATA
        assert dsm.bounds == rgb.bounds
        assert label.transform == rgb.transform
        cmap = label.colormap(1)
        assert [list(cmap[i][:3]) for i in range(6)] == ISPRS_PALETTE
        lab = label.read(1)
        heights = dsm.read(1)
        assert set(np.unique(lab)) <= set(range(6))
        assert len(np.unique(lab)) >= 4
        valid = heights[heights != NODATA]
        assert valid.min() > 200 and np.isfinite(valid).all()
        assert rgb.compression.name == 'deflate' and rgb.is_tiled
    again = write_synthetic_scene(str(tmp_path / 'again'), 300, 200,
                                  dsm_factor=4, tile=128)
    for key in paths:
        with rasterio.open(paths[key]) as a, rasterio.open(again[key]) as b:
            assert np.array_equal(a.read(), b.read())


def test_cli(tmp_path):
    out = tmp_path / 'scene'
    proc = subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'misc', 'make_synthetic_dataset.py'),
         str(out), '--geotiff-scene', '64', '96', '--dsm-factor', '2'],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with rasterio.open(out / 'dsm.tif') as dsm:
        assert dsm.shape == (32, 48)
    assert not (out / 'img_dir').exists()


@pytest.mark.parametrize('args, named', [
    (['--geotiff-scene', '64', '96', '--nir'], '--nir'),
    (['--geotiff-scene', '64', '96', '--num-train', '4', '--tile-size',
      '64'], '--num-train, --tile-size'),
    (['--dsm-factor', '2'], '--dsm-factor'),
])
def test_cli_refuses_options_the_output_ignores(tmp_path, args, named):
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'misc', 'make_synthetic_dataset.py'),
         str(out), *args],
        capture_output=True, text=True)
    assert proc.returncode == 2 and f'{named}: not used' in proc.stderr
    assert not out.exists()


def test_cli_scene_set(tmp_path):
    """--scene-set N: N scenes, the DSM (1 m) on another extent than the
    RGB (0.25 m), polygons and AOI in the scene's CRS, a scene list."""
    out = tmp_path / 'set'
    proc = subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'misc', 'make_synthetic_dataset.py'),
         str(out), '--scene-set', '2', '--geotiff-scene', '64', '96'],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = (out / 'scenes.csv').read_text().splitlines()
    assert lines[0] == 'name,rgb,dsm,labels,aoi,split'
    assert [line.split(',')[-1] for line in lines[1:]] == ['train', 'val']
    with rasterio.open(out / 'scene_1' / 'rgb.tif') as rgb, \
            rasterio.open(out / 'scene_1' / 'dsm.tif') as dsm:
        assert rgb.res == (0.25, 0.25) and dsm.res == (1.0, 1.0)
        assert dsm.bounds.left < rgb.bounds.left
        assert dsm.bounds.right < rgb.bounds.right
        assert dsm.bounds.top > rgb.bounds.top
    import json
    for name in ('labels', 'aoi'):
        data = json.loads((out / 'scene_1' / f'{name}.geojson').read_text())
        assert data['crs']['properties']['name'] == SCENE_CRS
        assert data['features']
