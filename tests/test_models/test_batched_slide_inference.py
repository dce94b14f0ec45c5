"""Batched sliding-window inference (``test_cfg.batch_windows``) against
mmseg's per-window ``EncoderDecoder.slide_inference`` loop on the same
model: the demo MoBaNet (tiny DINOv2-style ViT, CPIA, DGFM, UperNet) with
random weights, whose windows see spatial context (attention, 3x3 convs),
so any misplaced, dropped or double-counted window changes the result."""
import itertools
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmrsfusion.models.utils import accumulate_windows, slide_windows
from mmrsfusion.utils import load_config, progress as progress_module

init_default_scope('mmseg')
ROOT = osp.join(osp.dirname(__file__), '..', '..')
CROP, STRIDE = (32, 32), (20, 20)


def demo_model(crop=CROP, stride=STRIDE, batch_windows=1, seed=0):
    cfg = load_config(
        osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py'))
    model_cfg = cfg.model
    model_cfg.backbone.frozen_checkpoint = None
    model_cfg.test_cfg = ConfigDict(
        mode='slide', crop_size=crop, stride=stride,
        batch_windows=batch_windows)
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def inputs(b, h, w, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((b, 4, h, w), generator=gen)


def metas(h, w):
    return [dict(img_shape=(h, w), ori_shape=(h, w))]


def mmseg_loop(model, x):
    """mmseg's own per-window loop, run on our model."""
    with torch.no_grad():
        return EncoderDecoder.slide_inference(model, x, metas(*x.shape[2:]))


def batched(model, x, k):
    model.test_cfg.batch_windows = k
    with torch.no_grad():
        return model.slide_inference(
            x, metas(*x.shape[2:]),
            model.modalities.presence(batch_size=x.shape[0]))


@pytest.fixture(scope='module')
def model():
    return demo_model()


@pytest.mark.parametrize('b,h,w', [
    (1, 45, 70),   # not a multiple of the stride on either side
    (2, 71, 52),   # a batch of two tiles
    (1, 20, 27),   # smaller than the window on both sides
    (1, 20, 90),   # smaller on one side only
    (1, 32, 32),   # exactly one window
])
@pytest.mark.parametrize('k', [1, 3, 8, 1000])
def test_batched_equals_mmseg_loop(model, b, h, w, k):
    x = inputs(b, h, w)
    ref = mmseg_loop(model, x)
    out = batched(model, x, k)
    assert out.shape == ref.shape == (b, 6, h, w)
    assert (out - ref).abs().max().item() <= 1e-5
    if b == 2:  # the two tiles are not mixed up
        assert not torch.allclose(out[0], out[1])


def test_windows_are_mmsegs():
    """slide_windows gives mmseg's grid: every stride, the last window
    flush with the border, one window of the side when it is smaller."""
    assert slide_windows(45, 70, (32, 32), (20, 20)) == [
        (y1, y1 + 32, x1, x1 + 32) for y1 in (0, 13) for x1 in (0, 20, 38)]
    assert slide_windows(20, 27, (32, 32), (20, 20)) == [(0, 20, 0, 27)]


def test_forward_batches_hold_k_windows(model):
    """Each forward gets batch_windows * B crops (the rest in the last)."""
    x = inputs(2, 71, 52)
    sizes = []
    encode = model.encode_decode

    def recording(crops, batch_img_metas, presence):
        sizes.append(crops.shape[0])
        assert presence.shape == (crops.shape[0], 2)
        return encode(crops, batch_img_metas, presence)

    model.encode_decode = recording
    try:
        batched(model, x, 4)
    finally:
        del model.encode_decode
    n = len(slide_windows(71, 52, CROP, STRIDE))
    assert n == 6
    assert sizes == [8, 4]


def test_accumulators_are_updated_in_place():
    """The engine adds into the given maps (no per-window full-size copy)
    and counts every window; 'encode' returns each crop's first channel."""
    x = torch.arange(2 * 9 * 11, dtype=torch.float32).reshape(2, 1, 9, 11)
    windows = slide_windows(9, 11, (4, 5), (3, 2))
    logit_sum = torch.zeros(2, 1, 9, 11)
    count = torch.zeros(1, 1, 9, 11)
    ptr = logit_sum.data_ptr()
    done = []
    accumulate_windows(lambda c, p: c, x, windows, logit_sum, count, 5,
                       progress=done.append)
    assert logit_sum.data_ptr() == ptr
    expected_count = torch.zeros(9, 11)
    for y1, y2, x1, x2 in windows:
        expected_count[y1:y2, x1:x2] += 1
    assert torch.equal(count[0, 0], expected_count)
    torch.testing.assert_close(logit_sum / count, x)
    assert sum(done) == len(windows) and max(done) == 5


def test_window_progress_is_bounded_when_piped(model, capsys, monkeypatch):
    """A quick tile prints nothing; a slow one (each clock reading 1 s
    later) prints one line per 10 s with windows done / total and an ETA,
    not one per window."""
    batched(model, inputs(1, 45, 70), 8)  # 6 windows
    assert capsys.readouterr().out == ''
    ticks = itertools.count()
    monkeypatch.setattr(progress_module, 'clock', lambda: float(next(ticks)))
    # 11 x 11 = 121 windows of 8 x 8 at stride 4, one per forward
    model.test_cfg.crop_size, model.test_cfg.stride = (8, 8), (4, 4)
    try:
        batched(model, inputs(1, 48, 48), 1)
    finally:
        model.test_cfg.crop_size, model.test_cfg.stride = CROP, STRIDE
    lines = capsys.readouterr().out.splitlines()
    assert 10 <= len(lines) <= 13, lines
    assert all(re.match(r'windows \d+/121 .*, ETA ', line)
               for line in lines[:-1]), lines
    assert lines[-1].startswith('windows 121/121 (100%)')


def test_bad_batch_windows(model):
    with pytest.raises(ValueError, match='batch_windows'):
        batched(model, inputs(1, 45, 70), 0)
