"""Geometric transforms for stacks with any number of channels.

mmseg's ``RandomCrop``, ``RandomFlip``, ``Resize`` / ``RandomResize``
(nearest, bilinear, bicubic) and ``RandomRotate`` with ``pad_val=0`` handle
(H, W, N) float32 stacks correctly (tests/test_datasets/test_transforms.py
checks each against per-channel application). Two do not, and are replaced
here:

- mmcv's ``Pad`` fails on more than 4 channels (OpenCV's border value holds
  at most 4 numbers) and, with a float ``pad_val``, pads only channel 0 with
  it -> :class:`MultiModalPad`.
- mmseg's ``RandomRotate`` with a non-zero ``pad_val`` fills only channel 0
  of the border with it (the others get 0) -> :class:`MultiModalRandomRotate`.

Not replaced: ``Resize(interpolation='area')`` when shrinking more than 4
channels is refused by OpenCV; use the default bilinear.
"""
from numbers import Number
from typing import Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import Pad

from mmseg.datasets.transforms import RandomRotate
from mmseg.registry import TRANSFORMS

PadValue = Union[Number, Sequence[Number]]

_NP_PAD_MODES = dict(
    constant='constant', edge='edge', reflect='reflect', symmetric='symmetric')


def _per_channel(value: PadValue, channels: int, name: str) -> list:
    if isinstance(value, Number):
        return [value] * channels
    value = list(value)
    if len(value) != channels:
        raise ValueError(f'{name}: expected a number or {channels} values '
                         f'(one per channel), got {value!r}')
    return value


def pad_nchannel(img: np.ndarray,
                 shape: Sequence[int],
                 pad_val: PadValue = 0,
                 padding_mode: str = 'constant') -> np.ndarray:
    """Pad an (H, W) or (H, W, C) array at the bottom / right to ``shape``
    (h, w), with one pad value per channel; any C."""
    height = max(int(shape[0]) - img.shape[0], 0)
    width = max(int(shape[1]) - img.shape[1], 0)
    widths = [(0, height), (0, width)] + [(0, 0)] * (img.ndim - 2)
    if padding_mode != 'constant':
        return np.pad(img, widths, mode=_NP_PAD_MODES[padding_mode])
    if img.ndim == 2:
        return np.pad(img, widths, constant_values=pad_val)
    out = np.empty((img.shape[0] + height, img.shape[1] + width) +
                   img.shape[2:], img.dtype)
    out[...] = np.asarray(
        _per_channel(pad_val, img.shape[2], 'pad_val'), img.dtype)
    out[:img.shape[0], :img.shape[1]] = img
    return out


@TRANSFORMS.register_module()
class MultiModalPad(Pad):
    """mmcv's ``Pad`` for stacks with any number of channels.

    Same arguments and keys as :class:`mmcv.transforms.Pad`; ``pad_val``
    ``img`` may be a number (every channel) or one value per channel.
    """

    def _pad_img(self, results: dict) -> None:
        img = results['img']
        size = None
        if self.pad_to_square:
            max_size = max(img.shape[:2])
            size = (max_size, max_size)
        if self.size_divisor is not None:
            if size is None:
                size = (img.shape[0], img.shape[1])
            size = (int(np.ceil(size[0] / self.size_divisor)) *
                    self.size_divisor,
                    int(np.ceil(size[1] / self.size_divisor)) *
                    self.size_divisor)
        elif self.size is not None:
            size = self.size[::-1]
        padded = pad_nchannel(img, size, self.pad_val.get('img', 0),
                              self.padding_mode)
        results['img'] = padded
        results['pad_shape'] = padded.shape
        results['pad_fixed_size'] = self.size
        results['pad_size_divisor'] = self.size_divisor
        results['img_shape'] = padded.shape[:2]

    def _pad_seg(self, results: dict) -> None:
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = pad_nchannel(
                results['gt_seg_map'], results['pad_shape'][:2],
                self.pad_val.get('seg', 255), self.padding_mode)


@TRANSFORMS.register_module()
class MultiModalRandomRotate(RandomRotate):
    """mmseg's ``RandomRotate`` whose ``pad_val`` fills every channel.

    Same arguments as :class:`mmseg.datasets.transforms.RandomRotate`;
    ``pad_val`` may be a number (every channel) or one value per channel.
    The stack is rotated channel by channel: OpenCV applies a border value
    to at most 4 channels (a scalar one to channel 0 only), and its
    warpAffine on more than 4 channels was seen to give wrong values
    depending on process state. Use it instead of ``RandomRotate`` for
    stacks of more than 4 channels.
    """

    def transform(self, results: dict) -> dict:
        rotate, degree = self.generate_degree()
        if not rotate:
            return results
        img = results['img']
        kwargs = dict(
            angle=degree, center=self.center, auto_bound=self.auto_bound)
        if img.ndim == 2:
            results['img'] = mmcv.imrotate(
                img, border_value=self.pal_val, **kwargs)
        else:
            values = _per_channel(self.pal_val, img.shape[2], 'pad_val')
            results['img'] = np.stack([
                mmcv.imrotate(
                    np.ascontiguousarray(img[..., c]),
                    border_value=values[c],
                    **kwargs) for c in range(img.shape[2])
            ],
                                      axis=2)
        for key in results.get('seg_fields', []):
            results[key] = mmcv.imrotate(
                results[key],
                border_value=self.seg_pad_val,
                interpolation='nearest',
                **kwargs)
        results['img_shape'] = results['img'].shape[:2]
        return results
