"""tools/dataset_converters/scenes_to_tiles.py: the synthetic scene set
(RGB 0.25 m, DSM 1 m on another extent with a no-data strip, polygon
labels, an AOI) cut into tiles that the tiled loaders read as SceneDataset
reads the same windows; a config trains on them; outputs are guarded."""
import csv
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip('rasterio')

from mmengine.registry import init_default_scope  # noqa: E402

import mmrsfusion  # noqa: E402,F401
from mmrsfusion.datasets import MultiModalSegDataset, SceneDataset  # noqa
from mmrsfusion.datasets.isprs import ISPRS_CLASSES  # noqa: E402
from mmrsfusion.datasets.synthetic_scene import \
    write_synthetic_scene_set  # noqa: E402
from mmrsfusion.utils import load_config  # noqa: E402

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'dataset_converters'))
from scenes_to_tiles import main  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_scenes.py')
TILE = (96, 128)
#: DSM tolerance in normalised units (the scene's range is 1): the tiles
#: hold the warped float32 heights, so equal up to float32 rounding.
DSM_TOL = 1e-6


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenes')
    return write_synthetic_scene_set(str(root), num_scenes=3, height=160,
                                     width=224)


@pytest.fixture(scope='module')
def tiles(scenes, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('tiles') / 'tiles')
    assert main([CONFIG, out, '--scenes', scenes, '--tile-size',
                 *map(str, TILE), '--no-progress']) == 0
    return out


def scene_dataset(scenes):
    """The config's SceneDataset in grid mode over all splits, tiles of
    :data:`TILE`: what the tool reads."""
    init_default_scope('mmseg')
    cfg = load_config(CONFIG)
    return SceneDataset(ann_file=scenes, modalities=cfg.modalities,
                        crop_size=TILE, grid=True, test_mode=True,
                        pipeline=[], metainfo=dict(classes=ISPRS_CLASSES))


def tiled_dataset(out, split, pipeline):
    init_default_scope('mmseg')
    with open(osp.join(out, 'conversion.json')) as f:
        prefix = json.load(f)['data_prefix'][split]
    return MultiModalSegDataset(
        data_root=out, data_prefix=prefix, pipeline=pipeline,
        modalities=load_config(CONFIG).modalities,
        metainfo=dict(classes=ISPRS_CLASSES))


def edited_scene_list(scenes, name, column):
    """A copy of the scene list ``name`` beside it, with ``column`` of
    its second row emptied."""
    with open(scenes, newline='') as f:
        rows = list(csv.DictReader(f))
    rows[1][column] = ''
    path = osp.join(osp.dirname(scenes), name)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def window_of(stem):
    """``(scene, (y0, y1, x0, x1))`` of a tile stem."""
    scene, x0, y0, x1, y1 = stem.rsplit('_', 4)
    return scene, (int(y0), int(y1), int(x0), int(x1))


def test_tiles_equal_scene_dataset_windows(scenes, tiles):
    """Every grid window of SceneDataset is a tile of its scene's split,
    and the tiled loader reads it as SceneDataset does: image (RGB exact,
    DSM normalised by the scene's range from the manifest) and labels
    (ignore outside the AOI and the DSM) equal; the tiles are raw uint8
    RGB and float32 metres (no-data NaN) with the window's georeferencing."""
    ds = scene_dataset(scenes)
    index = {s['name']: i for i, s in enumerate(ds.scenes)}
    windows = {(ds.scenes[info['scene']]['name'], tuple(info['window']))
               for info in map(ds.get_data_info, range(len(ds)))}
    seen, ignored, nodata = set(), 0, 0
    for split in ('train', 'val'):
        tiled = tiled_dataset(tiles, split, [
            dict(type='LoadMultiModalImageFromFiles'),
            dict(type='LoadAnnotations')])
        for k in range(len(tiled)):
            got = tiled.prepare_data(k)
            stem = osp.splitext(osp.basename(got['img_path']))[0]
            name, span = window_of(stem)
            assert (split == 'val') == (name == 'scene_2')
            want = ds.read_window(index[name], span)
            assert np.array_equal(got['img'][..., :3], want['img'][..., :3])
            np.testing.assert_allclose(got['img'][..., 3],
                                       want['img'][..., 3], atol=DSM_TOL)
            assert np.array_equal(got['gt_seg_map'], want['gt_seg_map'])
            ignored += int((want['gt_seg_map'] == 255).sum())
            scene = ds.scenes[index[name]]
            for path, dtype in ((got['img_path'], 'uint8'),
                                (got['dsm_path'], 'float32'),
                                (got['seg_map_path'], 'uint8')):
                with rasterio.open(path) as src:
                    assert src.dtypes[0] == dtype
                    assert set(src.block_shapes) == {(128, 128)}  # TIFF tiles
                    assert src.crs == scene['crs']
                    assert src.transform == rasterio.windows.transform(
                        rasterio.windows.Window(span[2], span[0],
                                                span[3] - span[2],
                                                span[1] - span[0]),
                        scene['transform'])
                    if dtype == 'float32':
                        dsm = src.read(1)
                        assert np.isnan(src.nodata)
                        nodata += int(np.isnan(dsm).sum())
                        assert np.nanmin(dsm) >= scene['ranges']['dsm'][0]
            seen.add((name, span))
    # every window with an AOI pixel once, of each of the 3 scenes
    assert seen == windows and {name for name, _ in seen} == \
        {'scene_0', 'scene_1', 'scene_2'}
    assert ignored > 0 and nodata > 0


def test_windowed_loader_reads_scene_windows(scenes, tiles):
    """A training crop of a tile read by LoadMultiModalRandomWindow (only
    the crop is read; the scene's range from the manifest) equals
    SceneDataset's read of the same window of the scene."""
    ds = scene_dataset(scenes)
    index = {s['name']: i for i, s in enumerate(ds.scenes)}
    tiled = tiled_dataset(tiles, 'train', [
        dict(type='LoadMultiModalRandomWindow', crop_size=(40, 56))])
    loader = tiled.pipeline.transforms[0]
    for k in range(len(tiled)):
        info = tiled.get_data_info(k)
        name, (y0, y1, x0, x1) = window_of(
            osp.splitext(osp.basename(info['img_path']))[0])
        # the crop drawn: rows 7:47, columns 9:65 of the tile
        loader.cropper.crop_bbox = lambda results: (7, 47, 9, 65)
        got = loader(info)
        want = ds.read_window(index[name], (y0 + 7, y0 + 47, x0 + 9,
                                            x0 + 65))
        assert np.array_equal(got['img'][..., :3], want['img'][..., :3])
        np.testing.assert_allclose(got['img'][..., 3], want['img'][..., 3],
                                   atol=DSM_TOL)
        assert np.array_equal(got['gt_seg_map'], want['gt_seg_map'])


def test_tile_config_trains_on_the_tiles(tiles, tmp_path, tiny_demo_options):
    """configs/mobanet/demo_tinyvit_synthetic.py (the tiled demo) with
    data_root at the tiles (labels ``ann_dir``), shrunk: builds, reads a
    batch of the train split and trains one iteration."""
    from mmengine.runner import Runner
    init_default_scope('mmseg')
    cfg = load_config(osp.join(ROOT, 'configs', 'mobanet',
                               'demo_tinyvit_synthetic.py'))
    cfg.merge_from_dict(dict(tiny_demo_options, **{
        'train_dataloader.dataset.data_root': tiles,
        # the demo trains on ISPRS-style eroded labels; scenes have one set
        'train_dataloader.dataset.data_prefix.seg_map_path': 'ann_dir/train',
        'train_cfg.max_iters': 1,
        'default_hooks.checkpoint.interval': 1,
    }))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert osp.isfile(osp.join(str(tmp_path), 'iter_1.pth'))
    dataset = runner.train_dataloader.dataset
    with open(osp.join(tiles, 'conversion.json')) as f:
        assert len(dataset) == json.load(f)['splits']['train'] > 2
    sample = dataset[0]
    assert sample['inputs'].shape[0] == 4  # RGB + DSM


def test_refuses_existing_outputs(scenes, tiles, capsys):
    before = {p: os.stat(osp.join(tiles, p)).st_mtime_ns
              for p in ('conversion.json', 'img_dir/val')}
    assert main([CONFIG, tiles, '--scenes', scenes, '--tile-size',
                 *map(str, TILE), '--no-progress']) == 1
    assert 'exists; pass --overwrite' in capsys.readouterr().err
    assert before == {p: os.stat(osp.join(tiles, p)).st_mtime_ns
                      for p in before}


def test_interrupted_run_leaves_no_part_file(scenes, tmp_path,
                                             monkeypatch):
    """An exception while the 5th tile file is renamed: the finished tiles
    stay, no ``.part`` file and no manifest are left; the rerun refuses
    the finished tiles, and with --overwrite completes."""
    from mmrsfusion.datasets import scene_tiles
    out = str(tmp_path / 'tiles')
    calls, replace = [0], os.replace

    def failing(src, dst):
        calls[0] += 1
        if calls[0] == 5:
            assert src.endswith('.tif.part') and osp.isfile(src)
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(scene_tiles.os, 'replace', failing)
    with pytest.raises(KeyboardInterrupt):
        main([CONFIG, out, '--scenes', scenes, '--no-progress'])
    monkeypatch.setattr(scene_tiles.os, 'replace', replace)
    files = [osp.join(d, f) for d, _, fs in os.walk(out) for f in fs]
    assert len(files) == 4 and not any('.part' in f for f in files)
    assert main([CONFIG, out, '--scenes', scenes, '--no-progress']) == 1
    assert main([CONFIG, out, '--scenes', scenes, '--no-progress',
                 '--overwrite']) == 0
    with open(osp.join(out, 'conversion.json')) as f:
        assert json.load(f)['splits'] == dict(train=2, val=1)


def test_bad_input_names_the_row(scenes, tmp_path, monkeypatch, capsys):
    """A row without split, and a window that cannot be read, are errors
    naming the scene list row; nothing is written."""
    bad = edited_scene_list(scenes, 'no_split.csv', 'split')
    out = str(tmp_path / 'tiles')
    assert main([CONFIG, out, '--scenes', bad, '--no-progress']) == 1
    assert f'{bad} row 2: no split' in capsys.readouterr().err
    assert not osp.exists(out)
    # with --default-split that row goes there
    assert main([CONFIG, out, '--scenes', bad, '--no-progress',
                 '--default-split', 'extra']) == 0
    with open(osp.join(out, 'conversion.json')) as f:
        assert json.load(f)['splits'] == dict(extra=1, train=1, val=1)

    from mmrsfusion.io.raster_scene import RasterScene
    read = RasterScene.read

    def damaged(self, name, span):
        if 'scene_1' in self.paths[name] and name == 'rgb':
            raise ValueError('cannot read (damaged)')
        return read(self, name, span)

    monkeypatch.setattr(RasterScene, 'read', damaged)
    assert main([CONFIG, str(tmp_path / 'other'), '--scenes', scenes,
                 '--no-progress']) == 1
    err = capsys.readouterr().err
    assert f"{scenes} row 2 (scene 'scene_1'), rows 0:" in err
    assert 'cannot read (damaged)' in err


def test_cli_command_takes_a_config_name(scenes, tmp_path, capsys):
    """``mmrsfusion convert scenes_to_tiles CONFIG_NAME OUT ...``."""
    from mmrsfusion import cli
    out = str(tmp_path / 'tiles')
    with pytest.raises(SystemExit) as info:
        cli.main(['convert', 'scenes_to_tiles', 'mobanet/demo_tinyvit_scenes',
                  out, '--scenes', scenes, '--no-progress'])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert f'{scenes} row 3): 1 tile(s) -> val' in printed
    assert '3 tiles of at most 1024x1024 (train 2, val 1)' in printed


def test_missing_modality_tiles(scenes, tmp_path):
    """A scene without its DSM (``allow_missing`` of the config's dataset)
    gets no DSM tiles; the tiled dataset with ``allow_missing`` reads its
    tiles DSM-absent, as SceneDataset reads its windows."""
    listed = edited_scene_list(scenes, 'no_dsm.csv', 'dsm')
    out = str(tmp_path / 'tiles')
    assert main([CONFIG, out, '--scenes', listed, '--no-progress',
                 '--cfg-options',
                 'train_dataloader.dataset.allow_missing=[dsm]']) == 0
    assert sorted(os.listdir(osp.join(out, 'dsm_dir', 'train'))) == \
        ['scene_0_0_0_224_160.tif']
    init_default_scope('mmseg')
    ds = SceneDataset(ann_file=listed, modalities=load_config(CONFIG)
                      .modalities, crop_size=(1024, 1024), grid=True,
                      test_mode=True, pipeline=[], allow_missing=['dsm'],
                      metainfo=dict(classes=ISPRS_CLASSES))
    with open(osp.join(out, 'conversion.json')) as f:
        prefix = json.load(f)['data_prefix']['train']
    tiled = MultiModalSegDataset(
        data_root=out, data_prefix=prefix, allow_missing=['dsm_path'],
        pipeline=[dict(type='LoadMultiModalImageFromFiles'),
                  dict(type='LoadAnnotations')],
        modalities=load_config(CONFIG).modalities,
        metainfo=dict(classes=ISPRS_CLASSES))
    presence = []
    for k in range(len(tiled)):
        got = tiled.prepare_data(k)
        name, span = window_of(
            osp.splitext(osp.basename(got['img_path']))[0])
        want = ds.read_window(int(name[-1]), span)
        presence.append(got['presence'])
        assert got['presence'] == want['presence']
        assert np.array_equal(got['img'][..., :3], want['img'][..., :3])
        np.testing.assert_allclose(got['img'][..., 3], want['img'][..., 3],
                                   atol=DSM_TOL)
        assert np.array_equal(got['gt_seg_map'], want['gt_seg_map'])
    assert presence == [(True, True), (True, False)]
