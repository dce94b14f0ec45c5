"""Whole-tile sliding-window inference on the stacked multimodal tensor.

mmseg's ``EncoderDecoder`` slide mode is used as is. The model here is built
from a config dict through ``MultiModalSegDataPreProcessor`` and computes
per-pixel logits from the local input only (1x1 convolutions + FCNHead with
no 3x3 convs), so the slide result must equal the whole-image result; any
misplaced, missing or double-counted window would break the equality.
Window placement is checked separately by recording every window.
"""
import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmrsfusion.utils import load_config

import mmrsfusion  # noqa: F401  (registers the package's modules)

# as a config's default_scope='mmseg' does under the Runner
init_default_scope('mmseg')


@MODELS.register_module(name='_PointwiseTestBackbone', force=True)
class PointwiseBackbone(BaseModule):
    """Test-only backbone: a stack of 1x1 convolutions (no spatial context).

    Args:
        in_channels (int): Channels of the stacked input, e.g. 4 for
            RGB + DSM.
        channels (int): Output channels.
    """

    def __init__(self, in_channels: int, channels: int = 8, init_cfg=None):
        super().__init__(init_cfg)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 1))

    def forward(self, x):
        """(B, in_channels, H, W) -> [(B, channels, H, W)]."""
        return [self.net(x)]


NUM_CLASSES = 6


def _model_cfg(in_channels=4, mode='slide', crop=(32, 32), stride=(12, 12),
               preprocessor_test_cfg=None, segmentor='EncoderDecoder'):
    # rgb:3 + dsm:1 (+ ndsm:1 for 5 channels)
    modalities = [
        dict(name='rgb', channels=3, kind='optical',
             mean=[120.0, 110.0, 100.0], std=[60.0, 55.0, 50.0]),
        dict(name='dsm', channels=1, kind='elevation', mean=[0.5],
             std=[0.25]),
        dict(name='ndsm', channels=1, kind='elevation', mean=[0.4],
             std=[0.3]),
    ][:in_channels - 2]
    data_preprocessor = dict(
        type='MultiModalSegDataPreProcessor',
        modalities=modalities,
        pad_val=0,
        seg_pad_val=255)
    if preprocessor_test_cfg is not None:
        data_preprocessor['test_cfg'] = preprocessor_test_cfg
    test_cfg = dict(mode=mode)
    if mode == 'slide':
        test_cfg.update(crop_size=crop, stride=stride)
    extra = {}
    if segmentor == 'MultiModalEncoderDecoder':
        extra['modalities'] = modalities
    return dict(
        type=segmentor,
        **extra,
        data_preprocessor=data_preprocessor,
        backbone=dict(
            type='_PointwiseTestBackbone', in_channels=in_channels,
            channels=8),
        decode_head=dict(
            type='FCNHead',
            in_channels=8,
            channels=8,
            num_convs=0,
            concat_input=False,
            in_index=0,
            dropout_ratio=0.1,
            num_classes=NUM_CLASSES,
            norm_cfg=None,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=test_cfg)


def _build(seed=0, **kwargs):
    torch.manual_seed(seed)
    # ConfigDict as in a loaded config (slide mode reads test_cfg.mode)
    model = MODELS.build(ConfigDict(_model_cfg(**kwargs)))
    model.eval()
    return model


def _tiles(n, in_channels, h, w, seed=1):
    """n stacked tiles: optical uint8-range channels + DSM-like [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    tiles = []
    for _ in range(n):
        opt = torch.randint(0, 256, (3, h, w), generator=g).float()
        extra = torch.rand((in_channels - 3, h, w), generator=g)
        tiles.append(torch.cat([opt, extra]))
    return tiles


def _data(tiles):
    samples = []
    for t in tiles:
        s = SegDataSample()
        h, w = t.shape[-2:]
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.zeros((1, h, w), dtype=torch.long))
        samples.append(s)
    return dict(inputs=[t.clone() for t in tiles], data_samples=samples)


def _predict(model, tiles):
    with torch.no_grad():
        out = model.test_step(_data(tiles))
    logits = torch.stack([o.seg_logits.data for o in out])
    preds = torch.stack([o.pred_sem_seg.data for o in out])
    return logits, preds


def _slide_vs_whole(tiles, in_channels, **slide_kwargs):
    slide = _build(in_channels=in_channels, mode='slide', **slide_kwargs)
    whole = _build(
        in_channels=in_channels, mode='whole',
        preprocessor_test_cfg=slide_kwargs.get('preprocessor_test_cfg'),
        segmentor=slide_kwargs.get('segmentor', 'EncoderDecoder'))
    # same weights
    whole.load_state_dict(slide.state_dict())
    ls, ps = _predict(slide, tiles)
    lw, pw = _predict(whole, tiles)
    return ls, ps, lw, pw


SEGMENTORS = ['EncoderDecoder', 'MultiModalEncoderDecoder']


@pytest.mark.parametrize('segmentor', SEGMENTORS)
@pytest.mark.parametrize('in_channels', [4, 5])
@pytest.mark.parametrize('hw', [(45, 70), (71, 32), (33, 100)])
def test_slide_equals_whole_on_large_tile(in_channels, hw, segmentor):
    """Tile larger than the window, sides not a multiple of the stride."""
    h, w = hw
    assert (h - 32) % 12 != 0 or (w - 32) % 12 != 0
    tiles = _tiles(2, in_channels, h, w)  # a batch of two tiles
    ls, ps, lw, pw = _slide_vs_whole(tiles, in_channels, segmentor=segmentor)
    assert ls.shape == (2, NUM_CLASSES, h, w)
    assert ps.shape == (2, 1, h, w)
    torch.testing.assert_close(ls, lw, rtol=1e-5, atol=1e-5)
    assert torch.equal(ps, pw)
    # the two tiles of the batch are not mixed up
    assert not torch.equal(ps[0], ps[1])


@pytest.mark.parametrize('segmentor', SEGMENTORS)
@pytest.mark.parametrize('hw', [(20, 27), (20, 70), (70, 20), (32, 32)])
def test_slide_on_tile_smaller_than_window(hw, segmentor):
    """A side smaller than the window: one window of that side, no crash."""
    h, w = hw
    tiles = _tiles(1, 4, h, w)
    ls, ps, lw, pw = _slide_vs_whole(tiles, 4, segmentor=segmentor)
    assert ls.shape == (1, NUM_CLASSES, h, w)
    torch.testing.assert_close(ls, lw, rtol=1e-5, atol=1e-5)
    assert torch.equal(ps, pw)


def test_small_tile_padded_to_window_by_preprocessor():
    """test_cfg=dict(size=crop) pads a small tile to the window for models
    that need a fixed input size; the padding is cropped off again."""
    tiles = _tiles(1, 4, 20, 27)
    ls, ps, _, _ = _slide_vs_whole(
        tiles, 4, preprocessor_test_cfg=dict(size=(32, 32)))
    reference = _build(in_channels=4, mode='whole')
    lr, pr = _predict(reference, tiles)  # unpadded whole-tile result
    assert ls.shape == (1, NUM_CLASSES, 20, 27)
    torch.testing.assert_close(ls, lr, rtol=1e-5, atol=1e-5)
    assert torch.equal(ps, pr)


def test_every_channel_reaches_the_model():
    """The DSM channel of the stacked tensor changes the slide result."""
    tiles = _tiles(1, 4, 45, 70)
    model = _build(in_channels=4)
    l1, _ = _predict(model, tiles)
    flat = [t.clone() for t in tiles]
    flat[0][3] = 0
    l2, _ = _predict(model, flat)
    assert not torch.allclose(l1, l2)


def _expected_starts(size, crop, stride):
    """Window starts: every stride, the last one flush with the border."""
    if size <= crop:
        return [0]
    starts = list(range(0, size - crop, stride))
    return starts + [size - crop]


@pytest.mark.parametrize('hw,crop,stride', [
    ((45, 70), (32, 32), (12, 12)),
    ((100, 37), (32, 24), (20, 7)),
    ((20, 27), (32, 32), (12, 12)),
    ((64, 64), (32, 32), (16, 16)),
])
def test_windows_flush_and_cover_every_pixel(hw, crop, stride):
    """Record the windows slide_inference cuts; build the count map."""
    h, w = hw
    model = _build(in_channels=4, crop=crop, stride=stride)
    # channels 0/1 carry each pixel's row/column: a crop reveals its origin
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    inputs = torch.stack([ys, xs, ys, xs]).float()[None]
    windows = []
    encode_decode = model.encode_decode

    def recording_encode_decode(crop_img, metas):
        y1, x1 = int(crop_img[0, 0, 0, 0]), int(crop_img[0, 1, 0, 0])
        windows.append((y1, x1, crop_img.shape[2], crop_img.shape[3]))
        return encode_decode(crop_img, metas)

    model.encode_decode = recording_encode_decode
    metas = [dict(img_shape=(h, w), ori_shape=(h, w))]
    with torch.no_grad():
        logits = model.inference(inputs, metas)
    assert logits.shape == (1, NUM_CLASSES, h, w)

    exp_h, exp_w = min(crop[0], h), min(crop[1], w)
    count = torch.zeros(h, w, dtype=torch.long)
    for y1, x1, wh, ww in windows:
        assert (wh, ww) == (exp_h, exp_w)  # every window full-size
        assert 0 <= y1 and y1 + wh <= h and 0 <= x1 and x1 + ww <= w
        count[y1:y1 + wh, x1:x1 + ww] += 1
    assert (count > 0).all(), 'some pixel is covered by no window'
    starts_y = sorted({y for y, _, _, _ in windows})
    starts_x = sorted({x for _, x, _, _ in windows})
    assert starts_y == _expected_starts(h, crop[0], stride[0])
    assert starts_x == _expected_starts(w, crop[1], stride[1])
    assert len(windows) == len(starts_y) * len(starts_x)  # a full grid
    # the last row / column of windows is flush with the border
    assert max(y + wh for y, _, wh, _ in windows) == h
    assert max(x + ww for _, x, _, ww in windows) == w


@pytest.mark.parametrize('hw', [(200, 176), (100, 90)])
def test_baseline_config_slide_inference(hw):
    """The early-fusion baseline (ResNetV1c-18 on the 4-channel stack) from
    its config: slide inference on a tile larger than the window (not a
    multiple of the stride) and on one smaller than the window."""
    import os.path as osp

    from mmengine.config import Config
    cfg = load_config(
        osp.join(
            osp.dirname(__file__), '..', '..', 'configs', 'baselines',
            'early_fusion_r18_synthetic.py'))
    assert cfg.model.test_cfg.mode == 'slide'
    crop = cfg.model.test_cfg.crop_size
    stride = cfg.model.test_cfg.stride
    assert stride[0] < crop[0] and stride[1] < crop[1]
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    h, w = hw
    tiles = _tiles(1, 4, h, w)
    logits, preds = _predict(model, tiles)
    assert logits.shape == (1, NUM_CLASSES, h, w)
    assert preds.shape == (1, 1, h, w)
    assert torch.isfinite(logits).all()
