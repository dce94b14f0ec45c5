"""SceneDataset: windows of georeferenced scenes (the synthetic scene set:
RGB 0.25 m, DSM 1 m on another extent, polygon labels, an AOI) against the
same scenes converted to tiles and rasterised whole."""
import csv
import json
import os.path as osp

import numpy as np
import pytest

rasterio = pytest.importorskip('rasterio')

from mmengine.registry import init_default_scope  # noqa: E402
from rasterio.warp import Resampling, reproject  # noqa: E402

import mmrsfusion  # noqa: E402,F401
from mmrsfusion.datasets import SceneDataset  # noqa: E402
from mmrsfusion.datasets.isprs import ISPRS_CLASSES  # noqa: E402
from mmrsfusion.datasets.scene_dataset import grid_spans  # noqa: E402
from mmrsfusion.datasets.synthetic import NODATA  # noqa: E402
from mmrsfusion.datasets.synthetic_scene import \
    write_synthetic_scene_set  # noqa: E402
from mmrsfusion.datasets.transforms import \
    LoadMultiModalImageFromFiles  # noqa: E402
from mmrsfusion.io.vector_polygons import VectorPolygons  # noqa: E402

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
SPEC = [
    dict(name='rgb', channels=3, kind='optical', mean=[0.] * 3,
         std=[1.] * 3),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.], std=[1.]),
]
#: Resampling tolerance of the DSM, in normalised units (the scene's range
#: is 1): a window of the on-the-fly warp (GDAL WarpedVRT, bilinear) against
#: the whole DSM warped once (rasterio.warp.reproject, bilinear). Measured:
#: 0 (identical) with rasterio 1.4.4 / GDAL 3.10.3; the margin allows for
#: GDAL's chunked warping elsewhere.
DSM_TOL = 1e-5


@pytest.fixture(scope='module')
def scene_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenes')
    write_synthetic_scene_set(str(root), num_scenes=2, height=160,
                              width=224)
    return root


def make(root, ann_file='scenes.csv', **kwargs):
    init_default_scope('mmseg')
    kwargs.setdefault('pipeline', [])
    return SceneDataset(ann_file=ann_file, data_root=str(root),
                        modalities=SPEC, crop_size=(64, 64),
                        metainfo=dict(classes=ISPRS_CLASSES), **kwargs)


def write_list(root, name, rows):
    path = osp.join(str(root), name)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return name


def scene_row(i, **change):
    row = dict(name=f'scene_{i}', rgb=f'scene_{i}/rgb.tif',
               dsm=f'scene_{i}/dsm.tif', labels=f'scene_{i}/labels.geojson',
               aoi=f'scene_{i}/aoi.geojson', split='train')
    row.update(change)
    return row


def convert_to_tiles(root, scene, spans, out):
    """The scene converted to tiles as a converter would: DSM warped once
    onto the RGB grid (bilinear), then every span cut from the RGB, the
    warped DSM and the label raster and written as plain TIFFs."""
    with rasterio.open(root / scene / 'rgb.tif') as rgb, \
            rasterio.open(root / scene / 'dsm.tif') as dsm, \
            rasterio.open(root / scene / 'label.tif') as lab:
        image, label = rgb.read(), lab.read(1)
        heights = np.full((rgb.height, rgb.width), NODATA, np.float32)
        reproject(dsm.read(1), heights, src_transform=dsm.transform,
                  src_crs=dsm.crs, src_nodata=NODATA,
                  dst_transform=rgb.transform, dst_crs=rgb.crs,
                  dst_nodata=NODATA, resampling=Resampling.bilinear)
    valid = heights[heights != NODATA]
    tiles = []
    for k, (y0, y1, x0, x1) in enumerate(spans):
        paths = {}
        for key, arr, dtype in (
                ('img_path', image[:, y0:y1, x0:x1], 'uint8'),
                ('dsm_path', heights[None, y0:y1, x0:x1], 'float32'),
                ('seg_map_path', label[None, y0:y1, x0:x1], 'uint8')):
            paths[key] = str(out / f'{k}_{key}.tif')
            with rasterio.open(paths[key], 'w', driver='GTiff',
                               height=y1 - y0, width=x1 - x0,
                               count=arr.shape[0], dtype=dtype,
                               nodata=NODATA if key == 'dsm_path' else None
                               ) as f:
                f.write(arr.astype(dtype))
        tiles.append(paths)
    return tiles, (float(valid.min()), float(valid.max()))


def test_window_equals_tile_conversion(scene_set, tmp_path):
    """Pixels, no-data and labels of grid windows (no AOI: nothing
    ignored) equal the tiles of the converted scene; the DSM within
    DSM_TOL of the scene's range."""
    name = write_list(scene_set, 'no_aoi.csv',
                      [scene_row(0, aoi='', split='test')])
    ds = make(scene_set, name, test_mode=True)
    spans = [tuple(ds.get_data_info(i)['window']) for i in range(len(ds))]
    tiles, dsm_range = convert_to_tiles(scene_set, 'scene_0', spans,
                                        tmp_path)
    assert ds.scenes[0]['ranges']['dsm'] == pytest.approx(dsm_range,
                                                          abs=1e-3)
    loader = LoadMultiModalImageFromFiles(SPEC)
    nodata_seen = 0
    for i, (span, tile) in enumerate(zip(spans, tiles)):
        sample = ds.read_window(0, span)
        ref = loader(dict(tile, elevation_range=dict(dsm_path=dsm_range)))
        label = rasterio.open(tile['seg_map_path']).read(1)
        assert np.array_equal(sample['img'][..., :3], ref['img'][..., :3])
        dsm, ref_dsm = sample['img'][..., 3], ref['img'][..., 3]
        with rasterio.open(tile['dsm_path']) as f:
            ref_nodata = f.read(1) == NODATA
        nodata_seen += ref_nodata.sum()
        assert np.array_equal(dsm[ref_nodata], np.zeros(ref_nodata.sum()))
        assert np.abs(dsm - ref_dsm).max() <= DSM_TOL
        assert np.array_equal(sample['gt_seg_map'], label)
        assert sample['presence'] == (True, True)
    # the DSM's other extent leaves an eastern strip without heights
    assert nodata_seen > 0


def test_polygons_per_window_equal_whole_scene(scene_set):
    """Polygons rasterised per window (grid windows and odd random ones),
    each window reading only the features whose boxes meet it, equal the
    polygons rasterised once for the whole scene, which equal the label
    raster they were polygonised from."""
    from rasterio.windows import Window, bounds
    with rasterio.open(scene_set / 'scene_1' / 'label.tif') as f:
        label, transform, crs = f.read(1), f.transform, f.crs
    polygons = VectorPolygons(
        str(scene_set / 'scene_1' / 'labels.geojson'), crs, 'class')
    whole = polygons.rasterize(transform, (0, 160, 0, 224), 255)
    assert np.array_equal(whole, label)
    rng = np.random.default_rng(0)
    spans = grid_spans(160, 224, (48, 80)) + [
        (y, y + h, x, x + w) for y, x, h, w in zip(
            rng.integers(0, 100, 20), rng.integers(0, 150, 20),
            rng.integers(1, 60, 20), rng.integers(1, 70, 20))]
    read = []
    for y0, y1, x0, x1 in spans:
        assert np.array_equal(
            polygons.rasterize(transform, (y0, y1, x0, x1), 255),
            whole[y0:y1, x0:x1])
        read.append(len(polygons.read(bounds(
            Window(x0, y0, x1 - x0, y1 - y0), transform))[0]))
    assert max(read) < len(polygons) == len(polygons.read()[0])


def aoi_mask(root, scene):
    with rasterio.open(root / scene / 'rgb.tif') as f:
        polygons = VectorPolygons(str(root / scene / 'aoi.geojson'), f.crs)
        return polygons.rasterize(f.transform, (0, f.height, 0, f.width),
                                  0) > 0


def test_aoi_respected(scene_set):
    """Random windows are drawn only where the AOI is, in proportion to
    its area; label pixels outside it are ignored (255), inside they are
    classes."""
    ds = make(scene_set, split='train', samples_per_epoch=4)
    aoi = aoi_mask(scene_set, 'scene_0')
    assert 0.3 < aoi.mean() < 0.8
    np.random.seed(0)
    hits = np.zeros(aoi.shape, int)
    for _ in range(60):
        i, (y0, y1, x0, x1) = ds.draw_window()
        assert i == 0 and (y1 - y0, x1 - x0) == (64, 64)
        inside = aoi[y0:y1, x0:x1]
        assert inside.any()
        hits[y0:y1, x0:x1] += 1
        gt = ds.read_window(i, (y0, y1, x0, x1))['gt_seg_map']
        assert (gt[~inside] == 255).all()
        assert (gt[inside] < 6).all()  # the polygons cover every pixel
    # windows drawn by AOI area: the AOI is sampled more than the rest
    assert hits[aoi].mean() > 2 * hits[~aoi].mean()
    grid = make(scene_set, split='train', test_mode=True)
    spans = [tuple(grid.get_data_info(i)['window'])
             for i in range(len(grid))]
    all_spans = grid_spans(160, 224, (64, 64))
    outside = [s for s in all_spans if not aoi[s[0]:s[1], s[2]:s[3]].any()]
    assert outside and set(spans) == set(all_spans) - set(outside)


def test_drawn_window_reads_aoi_once(scene_set, monkeypatch):
    """Reading a drawn window does not read its AOI polygons again (each
    read opens the file); another window does."""
    ds = make(scene_set, split='train', samples_per_epoch=4)
    aoi = ds.scenes[0]['aoi']
    calls = []
    read = aoi.read
    monkeypatch.setattr(aoi, 'read', lambda *a: calls.append(a) or read(*a))
    np.random.seed(0)
    i, span = ds.draw_window()
    drawn = len(calls)
    first = ds.read_window(i, span)['gt_seg_map']
    assert drawn >= 1 and len(calls) == drawn
    y0, y1, x0, x1 = span
    shift = -1 if x0 else 1  # another window inside the scene
    ds.read_window(i, (y0, y1, x0 + shift, x1 + shift))
    assert len(calls) == drawn + 1
    assert np.array_equal(ds.read_window(i, span)['gt_seg_map'], first)


def test_absent_modality_marked(scene_set):
    """A scene without its DSM file is loaded with the DSM absent when
    allowed (zeros, presence False), else refused naming the row."""
    name = write_list(scene_set, 'absent.csv', [
        scene_row(0), scene_row(1, dsm='scene_1/missing.tif')])
    with pytest.raises(FileNotFoundError, match=r'absent.csv row 2.*dsm'):
        make(scene_set, name)
    ds = make(scene_set, name, allow_missing=['dsm'], test_mode=True)
    by_scene = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        by_scene.setdefault(info['scene'], ds.read_window(
            info['scene'], tuple(info['window'])))
    assert by_scene[0]['presence'] == (True, True)
    assert by_scene[1]['presence'] == (True, False)
    assert not by_scene[1]['img'][..., 3].any()
    assert by_scene[0]['img'][..., 3].any()


def test_grid_covers_each_scene(scene_set):
    """Without AOI, the grid windows of every scene cover it exactly once;
    JSON and YAML scene lists give the same windows as CSV."""
    rows = [scene_row(i, aoi='', split='val') for i in range(2)]
    name = write_list(scene_set, 'grid.csv', rows)
    with open(scene_set / 'grid.json', 'w') as f:
        json.dump(dict(scenes=rows), f)
    import yaml
    with open(scene_set / 'grid.yaml', 'w') as f:
        yaml.safe_dump(rows, f)
    windows = {}
    for ann in (name, 'grid.json', 'grid.yaml'):
        ds = make(scene_set, ann, test_mode=True)
        windows[ann] = [(ds.get_data_info(i)['scene'],
                         tuple(ds.get_data_info(i)['window']))
                        for i in range(len(ds))]
    assert windows[name] == windows['grid.json'] == windows['grid.yaml']
    for scene in (0, 1):
        count = np.zeros((160, 224), int)
        for i, (y0, y1, x0, x1) in windows[name]:
            if i == scene:
                count[y0:y1, x0:x1] += 1
        assert (count == 1).all()


def test_demo_config_trains_from_scenes(scene_set, tiny_demo_options):
    """configs/mobanet/demo_tinyvit_scenes.py, shrunk: 2 training
    iterations from the scene list, then the test loop over the grid
    windows of the val scene."""
    from mmengine.runner import Runner
    from mmrsfusion.utils import load_config
    init_default_scope('mmseg')
    cfg = load_config(osp.join(ROOT, 'configs', 'mobanet',
                               'demo_tinyvit_scenes.py'))
    cfg.merge_from_dict(dict(tiny_demo_options, **{
        'train_dataloader.dataset.data_root': str(scene_set),
        'train_dataloader.dataset.crop_size': (64, 64),
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.dataset.data_root': str(scene_set),
        'test_dataloader.dataset.crop_size': (96, 96),
        'model.backbone.encoder_cfg': dict(img_size=64, patch_size=8),
        'model.data_preprocessor.size': (64, 64),
        'model.test_cfg': dict(mode='slide', crop_size=(64, 64),
                               stride=(48, 48)),
        'train_cfg.max_iters': 2,
        'default_hooks.checkpoint.interval': 2,
    }))
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    # 6 windows of 96 tile the 160 x 224 val scene; 2 miss its AOI
    assert len(runner.test_dataloader.dataset) == 4
    assert 0 <= metrics['mIoU'] <= 100
    # the config's PerSceneMetric: the one val scene is the whole set
    assert metrics['scene_1/mIoU'] == metrics['mIoU']


def test_pickles_with_open_scenes(scene_set):
    """A dataset that has open scenes pickles (dataloader workers) and the
    copy reads the same windows, reopening the files."""
    import pickle
    ds = make(scene_set, test_mode=True)
    info = ds.get_data_info(0)
    first = ds.read_window(info['scene'], tuple(info['window']))
    copy = pickle.loads(pickle.dumps(ds))
    again = copy.read_window(info['scene'], tuple(info['window']))
    assert np.array_equal(first['img'], again['img'])
    assert np.array_equal(first['gt_seg_map'], again['gt_seg_map'])


def test_gdal_cache_bounded_in_reads_and_workers(scene_set, monkeypatch):
    """``gdal_cache_mb`` is GDAL's block cache while windows are read, in
    the main process and in dataloader workers (and only then)."""
    from rasterio.env import get_gdal_config
    from torch.utils.data import DataLoader

    def read(self, i, span):  # what GDAL's cache is during the read
        return dict(cache=get_gdal_config('GDAL_CACHEMAX'))

    monkeypatch.setattr(SceneDataset, '_read_window', read)
    monkeypatch.setattr(SceneDataset, 'check_label', lambda self, r: None)
    ds = make(scene_set, test_mode=True, gdal_cache_mb=24)
    assert ds[0]['cache'] == 24 * 2**20
    assert get_gdal_config('GDAL_CACHEMAX') != 24 * 2**20
    loader = DataLoader(ds, batch_size=2, num_workers=1,
                        collate_fn=lambda batch: batch,
                        multiprocessing_context='fork')
    assert {r['cache'] for batch in loader for r in batch} == {24 * 2**20}
    with pytest.raises(ValueError, match='gdal_cache_mb'):
        make(scene_set, gdal_cache_mb=0)
