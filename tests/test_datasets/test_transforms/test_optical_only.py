"""OpticalOnly: photometric transforms change the optical channels only."""
import numpy as np
import pytest

import mmrsfusion  # noqa: F401
from mmseg.registry import TRANSFORMS

SPEC = [
    dict(name='rgb', channels=3, kind='optical'),
    dict(name='nir', channels=1, kind='band'),
    dict(name='dsm', channels=1, kind='elevation'),
]


def _stack(seed=0, optical_max=255):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, optical_max + 1, (24, 20, 3)).astype(np.float32)
    nir = rng.random((24, 20, 1)).astype(np.float32) * 1000 + 0.123
    dsm = rng.random((24, 20, 1)).astype(np.float32)
    dsm[0, 0] = 0
    return np.concatenate([rgb, nir, dsm], -1)


def _results(img, spec=SPEC):
    return dict(
        img=img.copy(),
        img_shape=img.shape[:2],
        modalities=[dict(m) for m in spec])


PMD = dict(
    type='PhotoMetricDistortion',
    brightness_delta=64,
    contrast_range=(0.3, 1.7),
    saturation_range=(0.3, 1.7),
    hue_delta=40)


def test_non_optical_bit_identical_optical_distorted():
    t = TRANSFORMS.build(dict(type='OpticalOnly', transforms=[PMD]))
    changed = 0
    for seed in range(8):
        img = _stack(seed)
        np.random.seed(seed)
        out = t(_results(img))['img']
        assert out.dtype == np.float32 and out.shape == img.shape
        # DSM and NIR channels: bit-identical
        assert out[..., 3:].tobytes() == img[..., 3:].tobytes()
        changed += not np.array_equal(out[..., :3], img[..., :3])
    assert changed >= 4


def test_equals_the_mmseg_transform_on_the_optical_image():
    img = _stack(1)
    t = TRANSFORMS.build(dict(type='OpticalOnly', transforms=[PMD]))
    np.random.seed(11)
    out = t(_results(img))['img']
    ref = TRANSFORMS.build(PMD)
    np.random.seed(11)
    expected = ref(dict(img=img[..., :3].astype(np.uint8)))['img']
    np.testing.assert_array_equal(out[..., :3], expected.astype(np.float32))


def test_spec_from_argument_and_missing_spec():
    img = _stack()
    t = TRANSFORMS.build(
        dict(type='OpticalOnly', transforms=[PMD], modalities=SPEC))
    np.random.seed(0)
    out = t(dict(img=img.copy()))['img']
    assert out[..., 3:].tobytes() == img[..., 3:].tobytes()
    t = TRANSFORMS.build(dict(type='OpticalOnly', transforms=[PMD]))
    with pytest.raises(KeyError, match='modality spec'):
        t(dict(img=img.copy()))
    with pytest.raises(ValueError, match=r'\(H, W, 5\)'):
        t(_results(img[..., :4]))


def test_uint16_optical_needs_value_range():
    img = _stack(2, optical_max=65535)
    t = TRANSFORMS.build(dict(type='OpticalOnly', transforms=[PMD]))
    with pytest.raises(ValueError, match='value_range'):
        t(_results(img))
    t = TRANSFORMS.build(
        dict(type='OpticalOnly', transforms=[PMD], value_range=65535))
    np.random.seed(3)
    out = t(_results(img))['img']
    assert out[..., 3:].tobytes() == img[..., 3:].tobytes()
    assert out[..., :3].max() <= 65535 and out[..., :3].min() >= 0
    # identity inner transform: only the 8-bit quantisation remains
    t = TRANSFORMS.build(
        dict(
            type='OpticalOnly',
            transforms=[dict(type='AdjustGamma', gamma=1.0)],
            value_range=65535))
    out = t(_results(img))['img']
    np.testing.assert_allclose(out[..., :3], img[..., :3], atol=65535 / 255)


def test_rgbir_optical_with_channel_subset():
    spec = [
        dict(name='rgbir', channels=4, kind='optical'),
        dict(name='dsm', channels=1, kind='elevation'),
    ]
    img = _stack(4)
    t = TRANSFORMS.build(
        dict(type='OpticalOnly', transforms=[PMD], channels=[0, 1, 2]))
    changed = False
    for seed in range(4):
        np.random.seed(seed)
        out = t(_results(img, spec))['img']
        assert out[..., 3:].tobytes() == img[..., 3:].tobytes()
        changed |= not np.array_equal(out[..., :3], img[..., :3])
    assert changed
    t = TRANSFORMS.build(
        dict(type='OpticalOnly', transforms=[PMD], channels=[0, 5]))
    with pytest.raises(ValueError, match='out of range'):
        t(_results(img, spec))


def test_two_optical_modalities_are_both_transformed():
    spec = [
        dict(name='a', channels=3, kind='optical'),
        dict(name='b', channels=1, kind='elevation'),
        dict(name='c', channels=1, kind='optical'),
    ]
    img = _stack(5)
    img[..., 4] = np.rint(img[..., 4] * 255)
    t = TRANSFORMS.build(
        dict(
            type='OpticalOnly',
            transforms=[dict(type='AdjustGamma', gamma=2.0)]))
    out = t(_results(img, spec))['img']
    assert out[..., 3].tobytes() == img[..., 3].tobytes()
    assert not np.array_equal(out[..., :3], img[..., :3])
    assert not np.array_equal(out[..., 4], img[..., 4])


def test_shape_changing_transform_is_refused():
    t = TRANSFORMS.build(
        dict(
            type='OpticalOnly',
            transforms=[dict(type='RandomCrop', crop_size=(8, 8))]))
    res = _results(_stack())
    res['gt_seg_map'] = np.zeros((24, 20), np.uint8)
    res['seg_fields'] = []
    with pytest.raises(ValueError, match='photometric'):
        t(res)
