"""MCRMTransform: the per-sample pipeline form of MCRM."""
import numpy as np
import pytest

from mmseg.registry import TRANSFORMS

import mmrsfusion  # noqa: F401
from mmrsfusion.datasets.transforms.mcrm import MCRMTransform

RGB_DSM = [
    dict(name='rgb', channels=3, kind='optical'),
    dict(name='dsm', channels=1, kind='elevation'),
]


def sample(h=40, w=48, seed=0):
    rng = np.random.default_rng(seed)
    return dict(img=(1 + rng.random((h, w, 4))).astype(np.float32))


def changed_modalities(before, after):
    return [
        name for name, sl in (('rgb', slice(0, 3)), ('dsm', slice(3, 4)))
        if (before[..., sl] != after[..., sl]).any()
    ]


def test_masks_exactly_one_modality_with_a_rectangle():
    t = MCRMTransform(RGB_DSM, prob=1.0)
    np.random.seed(0)
    seen = []
    for i in range(200):
        res = sample(seed=i)
        img = res['img']
        out = t(dict(img=img))['img']
        assert out is not img and np.array_equal(res['img'], img)
        mods = changed_modalities(img, out)
        assert len(mods) == 1
        sl = slice(0, 3) if mods[0] == 'rgb' else slice(3, 4)
        other = slice(3, 4) if mods[0] == 'rgb' else slice(0, 3)
        assert np.array_equal(out[..., other], img[..., other])
        region = (out[..., sl] != img[..., sl]).any(-1)
        ys, xs = np.nonzero(region)
        rh, rw = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert region.sum() == rh * rw  # one full rectangle
        assert (out[ys.min():ys.max() + 1, xs.min():xs.max() + 1,
                    sl] == 0).all()
        slack = (rh + rw) / 2 + .25
        assert 0.1 * 40 * 48 - slack <= rh * rw <= 0.3 * 40 * 48 + slack
        seen.append(mods[0])
    # balanced in expectation: 200 draws, p = 0.5 each
    assert 70 < seen.count('rgb') < 130


def test_probability():
    np.random.seed(1)
    t = MCRMTransform(RGB_DSM, prob=0.25)
    hits = 0
    for i in range(400):
        res = sample(h=16, w=16, seed=i)
        img = res['img']
        out = t(res)['img']
        hits += not np.array_equal(out, img)
    assert 60 < hits < 140  # 100 expected
    res = sample()
    img = res['img']
    assert MCRMTransform(RGB_DSM, prob=0.)(res)['img'] is img


def test_deterministic_under_numpy_seed_and_fill_value():
    t = TRANSFORMS.build(
        dict(
            type='MCRMTransform',
            modalities=RGB_DSM,
            prob=1.0,
            num_rects=2,
            fill_value=dict(rgb=[1., 2., 3.], dsm=-5.)))
    np.random.seed(7)
    a = t(sample())['img']
    np.random.seed(7)
    b = t(sample())['img']
    assert np.array_equal(a, b)
    img = sample()['img']
    changed = (a != img)
    if changed[..., 0].any():
        assert (a[changed[..., 0]][:, :3] == [1., 2., 3.]).all()
    else:
        assert (a[..., 3][changed[..., 3]] == -5.).all()
    assert 'prob=1.0' in repr(t)


def test_errors():
    with pytest.raises(ValueError, match='at least 2 maskable'):
        MCRMTransform(RGB_DSM, mask_modalities=['dsm'])
    with pytest.raises(ValueError, match='prob'):
        MCRMTransform(RGB_DSM, prob=1.5)
    with pytest.raises(ValueError, match=r'\(H, W, 4\)'):
        MCRMTransform(RGB_DSM)(dict(img=np.zeros((8, 8, 3), np.float32)))
    # a float fill cannot go into an 8-bit image; integer fills can
    uint8 = dict(img=np.full((8, 8, 4), 7, np.uint8))
    with pytest.raises(TypeError, match=r"fill value \[123.675.*'rgb'.*uint8"):
        MCRMTransform(RGB_DSM, prob=1.0,
                      fill_value=dict(rgb=[123.675, 116.28, 103.53]))(uint8)
    out = MCRMTransform(RGB_DSM, prob=1.0, fill_value=0)(uint8)['img']
    assert out.dtype == np.uint8 and (out == 0).any()
