"""tools/dataset_converters/dfc2023.py on a small track-2 style folder the
test writes: COCO polygons rasterised, the split, the manifest statistics,
the dataset reading the result, and clear errors."""
import json
import os
import os.path as osp
import runpy

import cv2
import numpy as np
import pytest
import tifffile
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = runpy.run_path(
    osp.join(ROOT, 'tools', 'dataset_converters', 'dfc2023.py'))

init_default_scope('mmseg')


def write_raw(root, n=10, size=(32, 40)):
    rng = np.random.default_rng(0)
    for mod in ('rgb', 'dsm', 'sar'):
        os.makedirs(osp.join(root, 'train', mod))
    images, anns = [], []
    for i in range(n):
        stem = f'P{i:04d}'
        tifffile.imwrite(osp.join(root, 'train', 'rgb', stem + '.tif'),
                         rng.integers(0, 255, size + (3, ), np.uint8),
                         photometric='rgb')
        tifffile.imwrite(osp.join(root, 'train', 'dsm', stem + '.tif'),
                         rng.random(size).astype(np.float32) * 30)
        tifffile.imwrite(osp.join(root, 'train', 'sar', stem + '.tif'),
                         np.full(size, 10 * i, np.uint8))
        images.append(dict(id=100 + i, file_name=stem + '.tif',
                           height=size[0], width=size[1]))
        # a building: the rectangle x 5..14, y 3..9
        anns.append(dict(id=i, image_id=100 + i, segmentation=[
            [5, 3, 14, 3, 14, 9, 5, 9]]))
    path = osp.join(root, 'buildings.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns), f)
    return path


def test_convert_and_read(tmp_path, capsys):
    raw = str(tmp_path / 'raw')
    ann = write_raw(raw)
    out = str(tmp_path / 'dfc2023')
    assert TOOL['main']([raw, '-o', out, '--annotations', ann]) == 0
    manifest = json.load(open(osp.join(out, 'conversion.json')))
    assert manifest['counts'] == dict(train=8, val=2)
    assert sorted(manifest['split']['train'] + manifest['split']['val']) == \
        [f'P{i:04d}' for i in range(10)]
    # mean of the SAR over the 8 training images: 10 * their indices
    idx = [int(s[1:]) for s in manifest['split']['train']]
    assert manifest['train_stats']['sar']['mean'] == [
        pytest.approx(10 * np.mean(idx), abs=1e-3)]
    assert len(manifest['train_stats']['rgb']['mean']) == 3
    assert 'train, 2 val' in capsys.readouterr().out
    stem = manifest['split']['val'][0]
    label = cv2.imread(osp.join(out, 'ann_dir', 'val', stem + '.png'),
                       cv2.IMREAD_UNCHANGED)
    expected = np.zeros((32, 40), np.uint8)
    expected[3:10, 5:15] = 1
    assert np.array_equal(label, expected)
    # the same split again with the same seed; the dataset reads it
    parts = TOOL['split'](manifest['split']['train'] +
                          manifest['split']['val'], 0.2, 0)
    assert parts == manifest['split']
    ds = DATASETS.build(dict(
        type='DFC2023MMDataset', data_root=out,
        data_prefix=dict(img_path='img_dir/val', dsm_path='dsm_dir/val',
                         sar_path='sar_dir/val', seg_map_path='ann_dir/val'),
        pipeline=[]))
    assert len(ds) == 2 and ds.metainfo['classes'] == ('background',
                                                       'building')
    assert ds[0]['sar_path'].endswith('.tif')


def test_sgma_split_sizes():
    parts = TOOL['split']([f'P{i:04d}' for i in range(1773)], 0.2, 0)
    assert (len(parts['train']), len(parts['val'])) == (1419, 354)


def test_errors(tmp_path, capsys):
    raw = str(tmp_path / 'raw')
    ann = write_raw(raw, n=3)
    os.remove(osp.join(raw, 'train', 'sar', 'P0001.tif'))
    out = str(tmp_path / 'o')
    assert TOOL['main']([raw, '-o', out, '--annotations', ann]) == 1
    err = capsys.readouterr().err
    assert 'no sar raster' in err and 'P0001' in err
    assert not osp.exists(out)
    os.makedirs(out)
    assert TOOL['main']([raw, '-o', out, '--annotations', ann]) == 1
    assert 'exists' in capsys.readouterr().err
