"""tools/dataset_converters/dfc2023.py on a small track-2 style folder the
test writes: COCO polygons rasterised, the split, the manifest statistics,
the dataset reading the result, and clear errors."""
import json
import os
import os.path as osp
import runpy
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tifffile
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL_PATH = osp.join(ROOT, 'tools', 'dataset_converters', 'dfc2023.py')
TOOL = runpy.run_path(TOOL_PATH)

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


def _edit_coco(path, edit):
    with open(path) as f:
        coco = json.load(f)
    edit(coco)
    with open(path, 'w') as f:
        json.dump(coco, f)


def _set_polygon(poly):
    return lambda coco: coco['annotations'][1].update(segmentation=[poly])


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


#: case -> (how the raw folder is spoiled, given raw and the COCO path;
#: what the last line names: format keys raw, ann, val (a validation stem))
BAD_INPUTS = {
    'duplicate_id': (
        lambda raw, ann: _edit_coco(
            ann, lambda c: c['images'][1].update(id=100)),
        '{ann}: images[1] (P0001.tif) has the id 100 of P0000.tif; '
        'expected unique ids'),
    'raster_without_entry': (
        lambda raw, ann: _edit_coco(ann, lambda c: c['images'].pop(2)),
        '{raw}/train/rgb/P0002.tif: no images[] entry in {ann}'),
    'dsm_of_another_size': (
        lambda raw, ann: tifffile.imwrite(
            osp.join(raw, 'train', 'dsm', 'P0001.tif'),
            np.zeros((30, 40), np.float32)),
        '{raw}/train/dsm/P0001.tif: 30 x 40 pixels, expected the size of '
        '{raw}/train/rgb/P0001.tif (32 x 40, H x W)'),
    'one_band_rgb': (
        lambda raw, ann: tifffile.imwrite(
            osp.join(raw, 'train', 'rgb', 'P0001.tif'),
            np.zeros((32, 40), np.uint8)),
        '{raw}/train/rgb/P0001.tif: 1 band(s), expected 3 (R, G, B)'),
    'truncated_validation_dsm': (
        lambda raw, ann: _truncate(
            osp.join(raw, 'train', 'dsm', VAL_STEM + '.tif')),
        '{raw}/train/dsm/{val}.tif: cannot read as TIFF'),
    'odd_coordinates': (
        lambda raw, ann: _edit_coco(ann, _set_polygon([5, 3, 14, 3, 14])),
        '{ann}: annotations[1] (id 1), polygon 0: odd number of '
        'coordinates (5); expected x, y pairs'),
    'two_points': (
        lambda raw, ann: _edit_coco(ann, _set_polygon([5, 3, 14, 3])),
        '{ann}: annotations[1] (id 1), polygon 0: 2 point(s), expected at '
        'least 3 (a degenerate polygon)'),
    'zero_area': (
        lambda raw, ann: _edit_coco(ann, _set_polygon([5, 3, 9, 3, 14, 3])),
        '{ann}: annotations[1] (id 1), polygon 0: the polygon encloses no '
        'area'),
    'nan_polygon': (
        lambda raw, ann: _edit_coco(
            ann, _set_polygon([5, 3, float('nan'), 3, 14, 9])),
        '{ann}: annotations[1] (id 1), polygon 0: non-finite coordinate'),
    'no_image_id': (
        lambda raw, ann: _edit_coco(
            ann, lambda c: c['annotations'][1].pop('image_id')),
        '{ann}: annotations[1] (id 1): no image_id'),
    'truncated_json': (
        lambda raw, ann: _truncate(ann),
        '{ann}: not valid JSON'),
    'tif_and_tiff': (
        lambda raw, ann: os.link(
            osp.join(raw, 'train', 'sar', 'P0001.tif'),
            osp.join(raw, 'train', 'sar', 'P0001.tiff')),
        '{raw}/train/sar/P0001.tif and {raw}/train/sar/P0001.tiff: two '
        'files for P0001, expected one'),
}
VAL_STEM = TOOL['split']([f'P{i:04d}' for i in range(10)], 0.2, 0)['val'][0]


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_bad_input_is_named_and_nothing_written(tmp_path, capsys, case):
    raw = str(tmp_path / 'raw')
    ann = write_raw(raw)
    spoil, expected = BAD_INPUTS[case]
    spoil(raw, ann)
    out = str(tmp_path / 'out')
    assert TOOL['main']([raw, '-o', out, '--annotations', ann]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        'error: ' + expected.format(raw=raw, ann=ann, val=VAL_STEM)), last
    assert sorted(os.listdir(tmp_path)) == ['raw']  # no OUT, no staging


def test_label_dir_with_two_masks_for_a_stem(tmp_path, capsys):
    raw = str(tmp_path / 'raw')
    write_raw(raw, n=3)
    labels = tmp_path / 'labels'
    labels.mkdir()
    for i in range(3):
        cv2.imwrite(str(labels / f'P{i:04d}.png'), np.zeros((32, 40),
                                                            np.uint8))
    tifffile.imwrite(str(labels / 'P0001.tif'), np.zeros((32, 40), np.uint8))
    assert TOOL['main']([raw, '-o', str(tmp_path / 'out'), '--label-dir',
                         str(labels)]) == 1
    assert capsys.readouterr().err.strip().endswith(
        f'{labels}/P0001.png and {labels}/P0001.tif: two files for P0001, '
        'expected one; remove one of them')


def test_sigkill_staging_removed_by_next_run(tmp_path):
    """A conversion killed with SIGKILL leaves its hidden staging folder;
    the next one removes it (the ISPRS converters' scheme) and succeeds."""
    raw = str(tmp_path / 'raw')
    ann = write_raw(raw, n=3)
    out = str(tmp_path / 'out')
    code = (
        'import runpy, sys, time\n'
        'import mmrsfusion.io\n'
        'mmrsfusion.io.verify_written = lambda *a: time.sleep(600)\n'
        f'sys.argv = ["dfc2023.py", {raw!r}, "-o", {out!r}, '
        f'"--annotations", {ann!r}]\n'
        f'runpy.run_path({TOOL_PATH!r}, run_name="__main__")\n')
    proc = subprocess.Popen([sys.executable, '-c', code],
                            env=dict(os.environ, PYTHONPATH=ROOT))
    deadline = time.time() + 120
    while not [n for n in os.listdir(tmp_path) if '.converting-' in n]:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [n for n in os.listdir(tmp_path) if '.converting-' in n]
    assert TOOL['main']([raw, '-o', out, '--annotations', ann]) == 0
    assert sorted(os.listdir(tmp_path)) == ['out', 'raw']
