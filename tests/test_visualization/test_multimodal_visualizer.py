"""``tools/test.py --show-dir`` draws every test tile: each modality, the
ground truth and the prediction side by side; ``--out`` writes palette
PNGs."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.runner import save_checkpoint
from PIL import Image

from mmseg.registry import MODELS
from mmrsfusion.datasets import ISPRS_PALETTE, generate_synthetic_dataset
from mmrsfusion.utils import load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/baselines/early_fusion_r18_synthetic.py')


@pytest.fixture(scope='module')
def shown(tmp_path_factory):
    """The 8-tile synthetic demo test set through tools/test.py with a
    random-weight model (no training)."""
    tmp = tmp_path_factory.mktemp('show')
    root = generate_synthetic_dataset(str(tmp / 'data'), num_train=1,
                                      num_test=8)
    cfg = load_config(CONFIG)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp / 'random.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), ckpt)
    out = subprocess.run(
        [sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir',
         str(tmp / 'work'), '--show-dir', str(tmp / 'show'), '--out',
         str(tmp / 'out'), '--cfg-options',
         f'test_dataloader.dataset.data_root={root}',
         f'train_dataloader.dataset.data_root={root}',
         'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert out.returncode == 0, out.stderr[-3000:]
    return root, tmp


def test_show_dir_draws_every_tile_with_every_modality(shown):
    root, tmp = shown
    stems = sorted(osp.splitext(f)[0]
                   for f in os.listdir(osp.join(root, 'img_dir', 'test')))
    assert len(stems) == 8
    assert sorted(os.listdir(tmp / 'show')) == [f'{s}.png' for s in stems]
    for stem in stems:
        rgb = cv2.imread(osp.join(root, 'img_dir', 'test', stem + '.tif'))
        pic = cv2.imread(str(tmp / 'show' / f'{stem}.png'))
        h, w = rgb.shape[:2]
        # rgb, dsm, ground truth, prediction: (M + 2) panels of the tile
        assert pic.shape == (h, 4 * w, 3)
        # the optical panel is the file as is (away from the title text)
        assert np.array_equal(pic[h // 2:h // 2 + 20, :w], rgb[h // 2:h // 2 +
                                                               20])
        # the ground truth panel is in the dataset palette (BGR here)
        label = cv2.imread(osp.join(root, 'ann_eroded_dir', 'test',
                                    stem + '.png'), cv2.IMREAD_UNCHANGED)
        gt = pic[h // 2:, 2 * w:3 * w][:, :, ::-1]
        lut = np.zeros((256, 3), np.uint8)
        lut[:6] = ISPRS_PALETTE
        assert (gt == lut[label[h // 2:]]).all(axis=2).mean() > 0.99
        # the DSM panel is a colour map, not grey
        dsm = pic[:h // 2, w:2 * w].astype(int)
        assert np.abs(dsm[..., 0] - dsm[..., 2]).mean() > 10


def test_out_pngs_carry_the_palette(shown):
    _, tmp = shown
    files = sorted(os.listdir(tmp / 'out'))
    assert len(files) == 8
    png = Image.open(tmp / 'out' / files[0])
    assert png.mode == 'P'
    assert np.asarray(png.getpalette()[:18]).reshape(6, 3).tolist() == \
        [list(c) for c in ISPRS_PALETTE]


# Optical band choice: the picture shows the bands the model reads (chosen
# by the spec entry's ``bands`` or the dataset's band option), the first
# three of them.
R, G, B, IR = 10, 60, 120, 200


@pytest.mark.parametrize(
    'file_bands,entry,dataset_bands,shown',
    [
        # Potsdam RGBIR file read whole (4 channels): R, G, B
        ((R, G, B, IR), dict(channels=4), None, (R, G, B)),
        # Potsdam IRRG: IR, R, G read from R, G, B, IR by the dataset
        # (optical_bands='IRRG') or by the spec entry
        ((R, G, B, IR), dict(channels=3), (3, 0, 1), (IR, R, G)),
        ((R, G, B, IR), dict(channels=3, bands=[3, 0, 1]), None, (IR, R, G)),
        # Vaihingen IRRG file: false colour as is
        ((IR, R, G), dict(channels=3), None, (IR, R, G)),
    ])
def test_optical_panel_shows_the_bands_read(tmp_path, file_bands, entry,
                                            dataset_bands, shown):
    import tifffile
    from mmrsfusion.datasets.transforms import (LoadMultiModalImageFromFiles,
                                                run_pipeline)
    from mmrsfusion.visualization import MultiModalSegLocalVisualizer
    from mmseg.datasets.transforms import PackSegInputs
    path = str(tmp_path / 'tile.tif')
    tifffile.imwrite(
        path, np.broadcast_to(np.array(file_bands, np.uint8),
                              (40, 30, len(file_bands))).copy())
    spec = [dict(name='optical', kind='optical', **entry)]
    info = dict(img_path=path)
    if dataset_bands is not None:
        info['bands'] = dict(img_path=dataset_bands)
    packed = run_pipeline(
        [LoadMultiModalImageFromFiles(spec), PackSegInputs()], info)
    vis = MultiModalSegLocalVisualizer(name='bands_' + tmp_path.name)
    vis.set_dataset_meta(['a'], [[0, 0, 0]])
    pic = vis.draw_panels(packed['data_samples'], draw_pred=False)
    assert pic.shape == (40, 30, 3)
    assert pic[-5:].reshape(-1, 3).tolist() == [list(shown)] * 150
