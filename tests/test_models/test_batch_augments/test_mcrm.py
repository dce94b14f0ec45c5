"""MCRM batch augmentation: who is masked, where, and nothing else."""
import pytest
import torch

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.models.batch_augments import MCRM
from mmrsfusion.models.batch_augments.mcrm import balanced_split

RGB_DSM = [
    dict(name='rgb', channels=3, kind='optical'),
    dict(name='dsm', channels=1, kind='elevation'),
]
THREE = RGB_DSM + [dict(name='nir', channels=2, kind='band')]


def batch(b, c=4, h=40, w=48, seed=0):
    """Values in [1, 2): a masked (0-filled) pixel cannot occur naturally."""
    gen = torch.Generator().manual_seed(seed)
    return 1 + torch.rand(b, c, h, w, generator=gen)


def masked_map(before, after, sl):
    """(B, H, W) bool: pixels changed in the channel slice ``sl``."""
    return (before[:, sl] != after[:, sl]).any(1)


def bbox_of(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return (int(ys.min()), int(ys.max()) + 1, int(xs.min()),
            int(xs.max()) + 1)


@pytest.mark.parametrize('b,ratio,counts', [
    (16, 0.25, [2, 2]),  # the paper's setting
    (12, 0.25, [1, 2]),  # N = 3: floor(3/2) = 1 RGB, the rest DSM
    (13, 0.5, [3, 3]),  # N = floor(6.5) = 6
    (3, 0.25, [0, 0]),  # N = 0
    (8, 1.0, [4, 4]),
    (100, 0.29, [14, 15]),  # 0.29 * 100 = 28.999... in floats
])
def test_counts_per_modality_and_never_both(b, ratio, counts):
    aug = MCRM(RGB_DSM, ratio=ratio, seed=1)
    x = batch(b)
    out, samples = aug(x, ['s'] * b)
    assert samples == ['s'] * b
    rgb = masked_map(x, out, slice(0, 3)).flatten(1).any(1)
    dsm = masked_map(x, out, slice(3, 4)).flatten(1).any(1)
    assert [int(rgb.sum()), int(dsm.sum())] == counts
    assert not (rgb & dsm).any()


def test_balanced_split_n_modalities():
    assert balanced_split(3, 2) == [1, 2]
    assert balanced_split(4, 2) == [2, 2]
    assert balanced_split(7, 3) == [2, 2, 3]
    assert balanced_split(8, 3) == [2, 3, 3]
    aug = MCRM(THREE, ratio=7 / 16, seed=0)
    x = batch(16, c=6)
    out, _ = aug(x)
    per_mod = [
        masked_map(x, out, sl).flatten(1).any(1)
        for sl in (slice(0, 3), slice(3, 4), slice(4, 6))
    ]
    assert [int(m.sum()) for m in per_mod] == [2, 2, 3]
    assert int(sum(m.int() for m in per_mod).max()) == 1


def test_mask_modalities_subset():
    aug = MCRM(THREE, ratio=0.5, mask_modalities=['rgb', 'nir'], seed=0)
    x = batch(8, c=6)
    out, _ = aug(x)
    assert torch.equal(out[:, 3:4], x[:, 3:4])  # dsm never masked
    assert masked_map(x, out, slice(0, 3)).flatten(1).any(1).sum() == 2
    assert masked_map(x, out, slice(4, 6)).flatten(1).any(1).sum() == 2


def test_region_area_aspect_and_untouched_channels():
    area_range, aspect_range = (0.1, 0.3), (0.5, 2.0)
    h, w = 40, 48
    for seed in range(20):
        aug = MCRM(RGB_DSM, ratio=0.5, seed=seed)
        x = batch(8, h=h, w=w, seed=seed)
        out, _ = aug(x)
        touched = torch.zeros(8, 4, dtype=torch.bool)
        for sl in (slice(0, 3), slice(3, 4)):
            changed = masked_map(x, out, sl)
            for i in torch.nonzero(changed.flatten(1).any(1)).flatten():
                region = changed[i]
                y0, y1, x0, x1 = bbox_of(region)
                rh, rw = y1 - y0, x1 - x0
                # one filled rectangle, all channels of the modality at 0
                assert int(region.sum()) == rh * rw
                assert (out[i, sl, y0:y1, x0:x1] == 0).all()
                # h and w are rounded (by half a pixel at most each)
                slack = (rh + rw) / 2 + .25
                area = rh * rw
                assert area_range[0] * h * w - slack <= area
                assert area <= area_range[1] * h * w + slack
                assert aspect_range[0] * (rh - .5) <= rw + .5
                assert rw - .5 <= aspect_range[1] * (rh + .5)
                touched[i, sl] = True
        # every channel of every sample not masked is bit-identical
        for i in range(8):
            for c in range(4):
                if not touched[i, c]:
                    assert torch.equal(out[i, c], x[i, c])


def test_positions_cover_the_image():
    """Uniform position: corners and borders are reachable."""
    aug = MCRM(RGB_DSM, ratio=1.0, area_range=(0.25, 0.25), seed=0)
    x = batch(400, h=8, w=8)
    out, _ = aug(x)
    hit = (out != x).any(1).any(0)
    assert hit[0, 0] and hit[-1, -1] and hit[0, -1] and hit[-1, 0]


def test_num_rects_and_fill_value():
    aug = MCRM(
        RGB_DSM,
        ratio=1.0,
        num_rects=3,
        area_range=(0.01, 0.02),
        fill_value=dict(rgb=[-1., -2., -3.], dsm=7.),
        seed=0)
    x = batch(4, h=64, w=64)
    out, _ = aug(x)
    for i in range(4):
        changed = (out[i] != x[i])
        if changed[:3].any():
            vals = out[i, :3][:, changed[0]]
            assert torch.equal(vals, torch.tensor([[-1.], [-2.], [-3.]
                                                   ]).expand_as(vals))
        else:
            assert (out[i, 3][changed[3]] == 7.).all()
    # K = 3 small rectangles cover more than one, less than 3 * 2% + slack
    frac = (out != x).any(1).float().mean((1, 2))
    assert (frac > 0.01).all() and (frac < 0.07).all()


def test_deterministic_with_seed_or_generator_and_not_in_place():
    x = batch(16)
    x0 = x.clone()
    a = MCRM(RGB_DSM, seed=123)(x)[0]
    b = MCRM(RGB_DSM, seed=123)(x)[0]
    c = MCRM(RGB_DSM, seed=124)(x)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, x0)  # input not modified
    aug = MCRM(RGB_DSM)
    d = aug(x, generator=torch.Generator().manual_seed(123))[0]
    assert torch.equal(a, d)
    torch.manual_seed(5)  # default: the global RNG
    e = aug(x)[0]
    torch.manual_seed(5)
    assert torch.equal(e, aug(x)[0])


def test_build_from_registry_and_errors():
    aug = MODELS.build(dict(type='MCRM', modalities=RGB_DSM, ratio=0.25))
    assert isinstance(aug, MCRM) and 'ratio=0.25' in repr(aug)
    with pytest.raises(ValueError, match='at least 2 maskable'):
        MCRM(RGB_DSM[:1])
    with pytest.raises(ValueError, match=r"unknown modalities \['sar'\]"):
        MCRM(RGB_DSM, mask_modalities=['rgb', 'sar'])
    with pytest.raises(ValueError, match='area_range'):
        MCRM(RGB_DSM, area_range=(0.3, 0.1))
    with pytest.raises(ValueError, match=r'fill_value \(rgb\)'):
        MCRM(RGB_DSM, fill_value=dict(rgb=[0., 0.]))
    with pytest.raises(ValueError, match=r'expected \(B, 4, H, W\)'):
        MCRM(RGB_DSM)(torch.zeros(2, 3, 8, 8))
