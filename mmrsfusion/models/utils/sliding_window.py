"""Batched sliding-window inference: K windows per forward, logits summed
in place."""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

#: (y1, y2, x1, x2) of one window, in pixels of the tensor it is cut from.
Window = Tuple[int, int, int, int]


def window_spans(size: int, crop: int, stride: int) -> List[Tuple[int, int]]:
    """``(start, stop)`` of mmseg's sliding windows along one axis.

    A window starts every ``stride``; the last one is shifted to be flush
    with the border, and a side smaller than ``crop`` gives one window of
    that side.
    """
    grids = max(size - crop + stride - 1, 0) // stride + 1
    spans = []
    for idx in range(grids):
        stop = min(idx * stride + crop, size)
        spans.append((max(stop - crop, 0), stop))
    return spans


def slide_windows(height: int, width: int, crop_size: Sequence[int],
                  stride: Sequence[int]) -> List[Window]:
    """The windows of mmseg's ``EncoderDecoder.slide_inference``, row-major
    (the grid of :func:`window_spans` on each axis). All have the same
    size, ``(min(h_crop, height), min(w_crop, width))``, so they can be
    batched."""
    return [(y1, y2, x1, x2)
            for y1, y2 in window_spans(height, crop_size[0], stride[0])
            for x1, x2 in window_spans(width, crop_size[1], stride[1])]


def accumulate_windows(encode: Callable[[Tensor, Optional[Tensor]], Tensor],
                       inputs: Tensor,
                       windows: Sequence[Window],
                       logit_sum: Tensor,
                       count: Tensor,
                       batch_windows: int = 1,
                       progress: Optional[Callable[[int], None]] = None,
                       presence: Optional[Tensor] = None) -> None:
    """Run ``encode`` on ``windows`` of ``inputs``, ``batch_windows`` at a
    time, and add each window's logits and 1 to ``logit_sum`` / ``count``
    in place.

    Windows are added in the order given, so with mmseg's row-major order
    every pixel's sum is formed exactly as in its per-window loop (which
    adds zero-padded full-tile maps). Memory beyond the two accumulators is
    one batch of crops and their logits.

    Args:
        encode (callable): ``(crops, presence)`` -> logits: (N, C, h, w)
            crops and their (N, M) presence (or None) -> (N, K, h, w) logits
            at the crop size, e.g. a segmentor's ``encode_decode``.
        inputs (Tensor): (B, C, H, W).
        windows (Sequence[Window]): ``(y1, y2, x1, x2)`` inside ``inputs``,
            all of the same size (as :func:`slide_windows` gives).
        logit_sum (Tensor): (B, K, H, W) accumulator.
        count (Tensor): (1 or B, 1, H, W) accumulator.
        batch_windows (int): Windows per forward (the forward batch is
            ``batch_windows * B``). Defaults to 1.
        progress (callable, optional): Called with the number of windows
            done after every forward.
        presence (Tensor, optional): (B, M) bool presence of ``inputs``;
            each forward gets it repeated once per window of the batch, in
            the order of the crops.
    """
    if batch_windows < 1:
        raise ValueError(f'batch_windows: expected an integer >= 1, got '
                         f'{batch_windows!r}')
    batch = inputs.shape[0]
    for start in range(0, len(windows), batch_windows):
        chunk = windows[start:start + batch_windows]
        crops = torch.cat(
            [inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk])
        logits = encode(
            crops,
            None if presence is None else presence.repeat(len(chunk), 1))
        for i, (y1, y2, x1, x2) in enumerate(chunk):
            logit_sum[:, :, y1:y2, x1:x2] += logits[i * batch:(i + 1) * batch]
            count[:, :, y1:y2, x1:x2] += 1
        del crops, logits
        if progress is not None:
            progress(len(chunk))
