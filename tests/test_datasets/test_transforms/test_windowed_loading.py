"""LoadMultiModalRandomWindow: reading only the crop gives what reading the
whole tile and cropping gives; the re-tiling command; fallbacks."""
import copy
import json
import os
import multiprocessing
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import tifffile
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import mmrsfusion  # noqa: F401  (registers the transforms)
from mmrsfusion.datasets import PotsdamMMDataset
from mmrsfusion.datasets.isprs_raw import LAYOUT
from mmrsfusion.datasets.isprs_raw.retile import retile
from mmrsfusion.datasets.isprs_raw.tiles import write_tiff
from mmrsfusion.io import read_raster
from mmrsfusion.io.raster_window import WindowReader

SPEC = [
    dict(name='rgb', channels=3, kind='optical'),
    dict(name='dsm', channels=1, kind='elevation'),
]


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope('mmseg')


def _tile(h=600, w=520, seed=0):
    """RGBIR uint8, a float32 DSM with no-data, blocky labels with
    ignore pixels (a converted Potsdam tile)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    dsm = (30 + 40 * rng.random((h, w))).astype(np.float32)
    dsm[5:40, 7:90] = -9999.
    dsm[300, 300] = np.nan
    blocks = rng.integers(0, 6, (h // 16 + 1, w // 16 + 1))
    label = np.kron(blocks, np.ones((16, 16), int))[:h, :w].astype(np.uint8)
    label[:3] = 255
    return img, dsm, label


def _write_layout(root, tiles, writer=write_tiff):
    """Converted layout with files written by ``writer``; returns infos."""
    for folder in ('img_dir', 'dsm_dir', 'ann_dir'):
        os.makedirs(osp.join(root, folder, 'train'), exist_ok=True)
    for stem, (img, dsm, label) in tiles.items():
        writer(osp.join(root, 'img_dir', 'train', stem + '.tif'), img)
        writer(osp.join(root, 'dsm_dir', 'train', stem + '.tif'), dsm)
        writer(osp.join(root, 'ann_dir', 'train', stem + LAYOUT['ann'][1]),
               label)


def _dataset(root, pipeline, **kwargs):
    return PotsdamMMDataset(
        data_root=root,
        data_prefix=dict(
            img_path='img_dir/train',
            dsm_path='dsm_dir/train',
            seg_map_path='ann_dir/train'),
        pipeline=pipeline,
        **kwargs)


def _whole_then_crop(crop=(256, 256), cat_max_ratio=1.):
    return [
        dict(type='LoadMultiModalImageFromFiles', modalities=SPEC),
        dict(type='LoadAnnotations'),
        dict(type='RandomCrop', crop_size=crop, cat_max_ratio=cat_max_ratio),
    ]


def _window(crop=(256, 256), cat_max_ratio=1.):
    return [
        dict(
            type='LoadMultiModalRandomWindow',
            modalities=SPEC,
            crop_size=crop,
            cat_max_ratio=cat_max_ratio)
    ]


def _crop_origin(img, crop):
    """(y0, x0) of the unique position of ``crop``'s RGB in ``img``."""
    h, w = crop.shape[:2]
    hits = [(y, x) for y in range(img.shape[0] - h + 1)
            for x in range(img.shape[1] - w + 1)
            if img[y, x, 0] == crop[0, 0, 0] and np.array_equal(
                img[y:y + h, x:x + w, :3], crop[..., :3])]
    assert len(hits) == 1
    return hits[0]


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize('crop,cat_max_ratio', [((256, 256), 1.),
                                                ((100, 300), 0.75),
                                                ((700, 128), 1.)])
def test_window_equals_whole_tile_then_crop(tmp_path, crop, cat_max_ratio):
    """Same numpy seed: the same crop position, bit-identical img (DSM
    min-max normalised over the whole tile, no-data -> 0) and labels, same
    keys; crops taller than the tile too."""
    root = str(tmp_path)
    _write_layout(root, {'2_10': _tile(), '2_11': _tile(400, 380, 1)})
    pack = [dict(type='PackSegInputs')]
    whole = _dataset(root, _whole_then_crop(crop, cat_max_ratio) + pack)
    window = _dataset(root, _window(crop, cat_max_ratio) + pack)
    for i in range(2):
        for seed in range(6):
            np.random.seed(seed)
            a = whole[i]
            np.random.seed(seed)
            b = window[i]
            np.testing.assert_array_equal(a['inputs'].numpy(),
                                          b['inputs'].numpy())
            np.testing.assert_array_equal(
                a['data_samples'].gt_sem_seg.data.numpy(),
                b['data_samples'].gt_sem_seg.data.numpy())
            assert a['data_samples'].metainfo == b['data_samples'].metainfo


def test_transform_outputs_equal_whole_read(tmp_path):
    root = str(tmp_path)
    img, dsm, label = _tile()
    _write_layout(root, {'2_10': (img, dsm, label)})
    info = _dataset(root, []).get_data_info(0)
    whole = Compose(_whole_then_crop())
    window = Compose(_window())
    np.random.seed(3)
    a = whole(copy.deepcopy(info))
    np.random.seed(3)
    b = window(copy.deepcopy(info))
    _same(a, b)
    assert b['ori_shape'] == (600, 520) and b['img_shape'] == (256, 256)
    # the DSM channel is normalised by the whole tile's valid range
    valid = dsm[np.isfinite(dsm) & (dsm != -9999.)].astype(np.float64)
    y0, x0 = _crop_origin(img, b['img'])
    expected = (dsm[y0:y0 + 256, x0:x0 + 256] - valid.min()) / (
        valid.max() - valid.min())
    expected[~np.isfinite(expected) | (dsm[y0:y0 + 256, x0:x0 + 256] ==
                                       -9999.)] = 0
    np.testing.assert_array_equal(b['img'][..., 3],
                                  expected.astype(np.float32))


def test_tile_range_from_manifest_is_used(tmp_path):
    """conversion.json's tile statistics normalise the DSM of whole tiles
    (and their windows) alike."""
    root = str(tmp_path)
    img, dsm, label = _tile()
    _write_layout(root, {'2_10': (img, dsm, label)})
    manifest = dict(
        layout={r: dict(dir=d, ext=e) for r, (d, e) in LAYOUT.items()},
        tiles={'2_10': dict(dsm_stats=dict(min=0., max=100.))})
    (tmp_path / 'conversion.json').write_text(json.dumps(manifest))
    ds = _dataset(root, [])
    info = ds.get_data_info(0)
    assert tuple(info['elevation_range']['dsm_path']) == (0., 100.)
    np.random.seed(0)
    b = Compose(_window())(copy.deepcopy(info))
    np.random.seed(0)
    a = Compose(_whole_then_crop())(copy.deepcopy(info))
    _same(a, b)
    y0, x0 = _crop_origin(img, b['img'])
    expected = dsm[y0:y0 + 256, x0:x0 + 256].astype(np.float64) / 100.
    expected[~np.isfinite(expected) | (expected < 0)] = 0
    np.testing.assert_array_equal(b['img'][..., 3],
                                  expected.astype(np.float32))


def test_window_reader_equals_full_read(tmp_path):
    """rasterio windows of tiled, stripped and planar TIFFs hold the values
    of a full read; the file's no-data value comes with them."""
    img = _tile()[0]
    tiled = str(tmp_path / 't.tif')
    write_tiff(tiled, img)
    stripped = str(tmp_path / 's.tif')
    tifffile.imwrite(stripped, img, photometric='rgb',
                     extrasamples=['unspecified'], compression='zlib')
    planar = str(tmp_path / 'p.tif')
    tifffile.imwrite(planar, np.moveaxis(img, -1, 0), planarconfig='separate',
                     photometric='rgb', extrasamples=['unspecified'],
                     tile=(64, 64))
    dsm = str(tmp_path / 'd.tif')
    write_tiff(dsm, _tile()[1], nodata=-32767.)
    reader = WindowReader()
    assert reader.tiled(tiled) and reader.tiled(planar)
    assert not reader.tiled(stripped)
    for path in (tiled, stripped, planar, dsm):
        whole, nodata = read_raster(path, with_nodata=True)
        assert reader.shape(path) == whole.shape[:2]
        for window in [(0, 256, 0, 256), (250, 600, 17, 519),
                       (599, 600, 0, 1), (-5, 3, 510, 530)]:
            y0, y1, x0, x1 = window
            arr, got_nodata = reader.read(path, window)
            expected = whole[max(y0, 0):y1, max(x0, 0):x1]
            assert arr.dtype == whole.dtype and arr.flags.c_contiguous
            np.testing.assert_array_equal(arr, expected)
            assert got_nodata == nodata
    assert reader.read(tiled, (0, 1, 0, 1))[1] is None
    assert reader.read(dsm, (0, 1, 0, 1))[1] == -32767.
    with pytest.raises(ValueError, match='x.tif: cannot read as a raster'):
        (tmp_path / 'x.tif').write_bytes(b'not a tiff')
        reader.read(str(tmp_path / 'x.tif'), (0, 1, 0, 1))


def test_window_reader_open_files(tmp_path):
    """Open files are bounded and reopened when changed on disk; a pickled
    reader (a spawned worker) and a forked process open their own."""
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f'{i}.tif'))
        write_tiff(paths[-1], np.full((40, 30), i, np.uint8))
    reader = WindowReader(open_files=2)
    for path in paths:
        reader.read(path, (0, 5, 0, 5))
    assert list(reader._open) == paths[1:]
    write_tiff(paths[2], np.full((50, 30), 7, np.uint8))
    assert reader.shape(paths[2]) == (50, 30)
    assert reader.read(paths[2], (0, 2, 0, 2))[0].max() == 7
    clone = pickle.loads(pickle.dumps(reader))
    assert not clone._open and clone.read(paths[0], (0, 1, 0, 1))[0] == 0
    global _FORKED
    _FORKED = reader  # inherited by the forked worker, handles included
    with multiprocessing.get_context('fork').Pool(1) as pool:
        child_open, value = pool.apply(_read_in_child, (paths[2], ))
    assert child_open == [paths[2]] and value == 7  # its own, not ours
    assert list(reader._open) == paths[1:]


_FORKED = None


def _read_in_child(path):
    value = int(_FORKED.read(path, (0, 1, 0, 1))[0][0, 0, 0])
    return list(_FORKED._open), value


def test_old_layout_warns_then_retile_converts(tmp_path):
    """Data converted before (stripped TIFFs, PNG labels) still loads, with
    a warning naming the re-tiling command; after ``retile`` it is tiled,
    the PNG labels are TIFFs with the same values, and samples are
    unchanged."""
    root = str(tmp_path)
    tiles = {'2_10': _tile()}

    def old_writer(path, arr):
        if path.endswith('.png') or 'ann_dir' in path:
            cv2.imwrite(path[:-4] + '.png', arr)
        else:
            tifffile.imwrite(path, arr, compression='zlib')

    _write_layout(root, tiles, old_writer)
    assert os.listdir(osp.join(root, 'ann_dir', 'train')) == ['2_10.png']
    ds = _dataset(root, _window() + [dict(type='PackSegInputs')])
    with pytest.warns(UserWarning, match='mmrsfusion convert retile'):
        np.random.seed(1)
        before = ds[0]
    done = retile(root)
    assert len(done['rewritten']) == 3 and not done['tiled']
    assert os.listdir(osp.join(root, 'ann_dir', 'train')) == ['2_10.tif']
    np.testing.assert_array_equal(
        read_raster(osp.join(root, 'ann_dir', 'train', '2_10.tif'))[..., 0],
        tiles['2_10'][2])
    for folder in ('img_dir', 'dsm_dir', 'ann_dir'):
        with tifffile.TiffFile(
                osp.join(root, folder, 'train', '2_10.tif')) as tif:
            assert tif.pages[0].is_tiled
    assert retile(root)['rewritten'] == []  # idempotent
    ds = _dataset(root, _window() + [dict(type='PackSegInputs')])
    np.random.seed(1)
    after = ds[0]
    np.testing.assert_array_equal(before['inputs'].numpy(),
                                  after['inputs'].numpy())
    np.testing.assert_array_equal(
        before['data_samples'].gt_sem_seg.data.numpy(),
        after['data_samples'].gt_sem_seg.data.numpy())


def test_errors(tmp_path):
    root = str(tmp_path)
    img, dsm, label = _tile()
    _write_layout(root, {'2_10': (img, dsm[:500], label)})
    info = _dataset(root, []).get_data_info(0)
    with pytest.raises(ValueError, match=r'mismatched sizes.*2_10.tif is '
                       r'600x520.*dsm_dir/train/2_10.tif \(dsm\) is 500x520'):
        Compose(_window())(copy.deepcopy(info))
    with pytest.raises(ValueError, match=r"modalities \['dsm'\] have "
                       r"norm='zscore'"):
        Compose([
            dict(type='LoadMultiModalRandomWindow',
                 modalities=[SPEC[0], dict(SPEC[1], norm='zscore')],
                 crop_size=64)
        ])


def test_all_nodata_tile_without_recorded_range(tmp_path):
    """Without conversion.json the tile's range is computed from the whole
    DSM; a DSM that is all no-data has none: the error names the file, as
    the whole-tile loader's does."""
    root = str(tmp_path)
    img, dsm, label = _tile()
    dsm[:] = -9999.
    dsm[0, 0] = np.nan
    _write_layout(root, {'2_10': (img, dsm, label)})
    info = _dataset(root, []).get_data_info(0)
    assert 'elevation_range' not in info or not info['elevation_range']
    for pipeline in (_window(), _whole_then_crop()):
        with pytest.raises(ValueError, match=r'dsm_dir/train/2_10.tif: '
                           r'elevation band 0 is entirely no-data'):
            Compose(pipeline)(copy.deepcopy(info))


def test_stripped_tiles_no_larger_than_the_crop_do_not_warn(tmp_path):
    """A stripped TIFF no larger than the crop (GDAL writes small tiles in
    strips) is read whole either way: no re-tiling warning; a larger one
    warns."""
    import warnings

    root = str(tmp_path)

    def stripped(path, arr):
        tifffile.imwrite(path, arr, compression='zlib')

    img, dsm, label = _tile()  # 600 x 520
    _write_layout(root, {'2_10': (img[:128, :120], dsm[:128, :120],
                                  label[:128, :120])}, stripped)
    ds = _dataset(root, _window(crop=(128, 128)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ds[0]
    ds = _dataset(root, _window(crop=(128, 96)))
    with pytest.warns(UserWarning, match='stripped TIFF'):
        ds[0]
