"""tools/dataset_converters/deliver.py on tiny files laid out as the
published DELIVER release (github.com/jamycheung/DELIVER), and
DELIVERDataset reading what it writes."""
import os
import os.path as osp
import runpy

import cv2
import numpy as np
import pytest

import mmrsfusion  # noqa: F401
from mmrsfusion.datasets import DELIVER_CLASSES, DELIVERDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = runpy.run_path(
    osp.join(ROOT, 'tools', 'dataset_converters', 'deliver.py'))
H, W = 12, 16


def put(raw, folder, cond, split, seq, name, arr):
    d = osp.join(raw, folder, cond, split, seq)
    os.makedirs(d, exist_ok=True)
    assert cv2.imwrite(osp.join(d, name), arr)


def published(raw, depth_folder='depth'):
    """Two conditions, three splits; RGB 3-channel, depth 4-channel,
    LiDAR 1-channel, event at half resolution, semantic with 0 / 255."""
    rng = np.random.default_rng(0)
    samples = []
    for cond, split, seq, frame in [('cloud', 'train', 'MAP_1_point1',
                                     '000001'),
                                    ('night', 'train', 'MAP_2_point7',
                                     '000005'),
                                    ('fog', 'val', 'MAP_3_point2', '000002'),
                                    ('sun', 'test', 'MAP_10_point102',
                                     '045050')]:
        bgr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        put(raw, 'img', cond, split, seq, f'{frame}_rgb_front.png', bgr)
        put(raw, depth_folder, cond, split, seq, f'{frame}_depth_front.png',
            rng.integers(0, 256, (H, W, 4), dtype=np.uint8))
        put(raw, 'lidar', cond, split, seq, f'{frame}_lidar_front.png',
            rng.integers(0, 256, (H, W), dtype=np.uint8))
        put(raw, 'event', cond, split, seq, f'{frame}_event_front.png',
            rng.integers(0, 256, (H // 2, W // 2, 3), dtype=np.uint8))
        sem = rng.integers(0, 26, (H, W, 3), dtype=np.uint8)
        sem[0, 0, 2] = 255  # first channel as read in RGB order = R
        put(raw, 'semantic', cond, split, seq, f'{frame}_semantic_front.png',
            sem)
        samples.append((cond, split, seq, frame, bgr, sem))
    return samples


@pytest.mark.parametrize('depth_folder', ['depth', 'hha'])
def test_converts_the_published_layout(tmp_path, depth_folder):
    raw, out = str(tmp_path / 'DELIVER'), str(tmp_path / 'deliver')
    samples = published(raw, depth_folder)
    TOOL['main']([raw, '-o', out, '--depth-folder', depth_folder])
    for cond, split, seq, frame, bgr, sem in samples:
        stem = f'{cond}_{seq}_{frame}_front'
        img = cv2.imread(osp.join(out, 'img_dir', split, stem + '.png'))
        np.testing.assert_array_equal(img, bgr)
        for key in ('depth', 'event', 'lidar'):
            arr = cv2.imread(osp.join(out, f'{key}_dir', split,
                                      stem + '.png'), cv2.IMREAD_UNCHANGED)
            assert arr.shape == (H, W, 3), key
        lidar = cv2.imread(osp.join(out, 'lidar_dir', split, stem + '.png'))
        assert (lidar[..., 0] == lidar[..., 2]).all()  # 1 band repeated
        ann = cv2.imread(osp.join(out, 'ann_dir', split, stem + '.png'),
                         cv2.IMREAD_UNCHANGED)
        red = sem[..., 2].astype(int)
        expected = np.where((red == 0) | (red == 255), 255, red - 1)
        np.testing.assert_array_equal(ann, expected)
        assert ann[0, 0] == 255 and ann.max() <= 255
        assert set(np.unique(ann)) - {255} <= set(range(25))
    ds = DELIVERDataset(
        data_root=out,
        data_prefix=dict(img_path='img_dir/train',
                         depth_path='depth_dir/train',
                         event_path='event_dir/train',
                         lidar_path='lidar_dir/train',
                         seg_map_path='ann_dir/train'),
        modalities=[dict(name=n, channels=3, kind=k, mean=[0.] * 3,
                         std=[255.] * 3)
                    for n, k in (('rgb', 'optical'), ('depth', 'band'),
                                 ('event', 'band'), ('lidar', 'band'))],
        pipeline=[])
    assert len(ds) == 2 and len(DELIVER_CLASSES) == 25
    info = ds.get_data_info(0)
    assert info['lidar_path'].endswith(
        osp.join('lidar_dir', 'train', 'cloud_MAP_1_point1_000001_front.png'))
    with pytest.raises(FileExistsError):
        TOOL['main']([raw, '-o', out])
