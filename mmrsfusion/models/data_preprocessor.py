"""Data preprocessor for stacked multimodal inputs."""
from numbers import Number
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from mmseg.models import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.utils import stack_batch
from mmrsfusion.utils import ModalitySpec, positive_pair

#: Data-sample field of a sample's (M,) bool presence (spec order).
PRESENCE_FIELD = 'presence'


class _CallableAugment(nn.Module):
    """Holds a batch augmentation that is a plain callable."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, inputs, data_samples):
        return self.fn(inputs, data_samples)


@MODELS.register_module()
class MultiModalSegDataPreProcessor(SegDataPreProcessor):
    """mmseg's ``SegDataPreProcessor`` for a stacked multimodal tensor.

    Steps: cast to float and move to the device; normalise every channel
    with the ``mean`` / ``std`` of its modality in the spec; stack the
    samples' presence (the data samples' ``presence`` field, an (M,) bool
    tensor the dataset sets; all present without one) into the batch's
    (B, M) ``presence``; in training,
    stack and pad to ``size`` or a multiple of ``size_divisor`` (neither:
    to the largest image of the batch; images with
    ``pad_val``, after normalisation, labels with ``seg_pad_val``) and then
    run ``batch_augments`` in order as ``inputs, data_samples = aug(inputs,
    data_samples)``; in testing, stack, padding only as ``test_cfg`` says
    (``size`` / ``size_divisor``).

    No ``bgr_to_rgb``: the loader
    :class:`~mmrsfusion.datasets.transforms.LoadMultiModalImageFromFiles`
    keeps every file's band order (RGB for RGB files, IR-R-G for IRRG), and
    the spec's ``mean`` / ``std`` are written in that order, so there is
    nothing to swap -- and swapping channels 0 and 2 of a stack would mix
    modalities. Passing ``bgr_to_rgb`` / ``rgb_to_bgr`` raises an error.

    Absent channels are not touched here: the segmentor zeroes them
    (:meth:`MultiModalEncoderDecoder.apply_presence`), after the batch
    augments, for every source of absence. A
    :class:`MultiModalEncoderDecoder` sets :attr:`with_presence` and gets
    the (B, M) ``presence`` with the batch; under any other segmentor (e.g.
    mmseg's ``EncoderDecoder``, which cannot take it) a batch in which a
    sample lacks a modality is refused rather than read as zeros.

    Args:
        modalities (ModalitySpec | list[dict]): The modality spec (the
            segmentor's, handed down); each entry has ``mean`` and ``std``
            (units of the loaded arrays: 0-255 for 8-bit optical, e.g. mean
            0 / std 1 for a DSM already min-max normalised by the loader).
        size (tuple, optional): Fixed (h, w) to pad to in training.
        size_divisor (int, optional): Pad (h, w) to multiples of it (not
            together with ``size``).
        pad_val (float): Image padding value (normalised units). Default 0.
        seg_pad_val (int): Label padding value. Defaults to 255.
        batch_augments (list[dict], optional): Configs of batch
            augmentations, built from the ``MODELS`` registry; one that
            takes a ``modalities`` argument (e.g. ``MCRM``) gets this spec.
        test_cfg (dict, optional): ``size`` / ``size_divisor`` at test time.
    """

    def __init__(self,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 size: Optional[tuple] = None,
                 size_divisor: Optional[int] = None,
                 pad_val: Number = 0,
                 seg_pad_val: Number = 255,
                 batch_augments: Optional[List[dict]] = None,
                 test_cfg: Optional[dict] = None,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False) -> None:
        if bgr_to_rgb or rgb_to_bgr:
            raise ValueError(
                'MultiModalSegDataPreProcessor: bgr_to_rgb / rgb_to_bgr are '
                'not supported: the loader keeps each file\'s band order and '
                'the spec\'s mean/std follow it; swapping channels of a '
                'stack would mix modalities')
        if size is not None and size_divisor is not None:
            raise ValueError('MultiModalSegDataPreProcessor: give size or '
                             'size_divisor, not both')
        if size is not None:
            size = positive_pair(size, 'model.data_preprocessor.size')
        if size_divisor is not None:
            positive_pair(size_divisor, 'model.data_preprocessor.size_divisor')
        for key in ('size', 'size_divisor'):
            if (test_cfg or {}).get(key) is not None:
                positive_pair(test_cfg[key],
                              f'model.data_preprocessor.test_cfg.{key}')
        spec = ModalitySpec.build(modalities,
                                  'model.data_preprocessor.modalities')
        mean, std = spec.mean_std()
        super().__init__(
            mean=mean,
            std=std,
            size=size,
            size_divisor=size_divisor,
            pad_val=pad_val,
            seg_pad_val=seg_pad_val,
            test_cfg=test_cfg)
        self.modalities = spec
        #: Whether the owner takes ``presence`` (set by the segmentor).
        self.with_presence = False
        augments = nn.ModuleList()
        for i, cfg in enumerate(batch_augments or []):
            aug = MODELS.build(spec.bind(
                cfg, MODELS, f'model.data_preprocessor.batch_augments[{i}]')
            ) if isinstance(cfg, dict) else cfg
            if not callable(aug):
                raise TypeError(f'batch_augments: {cfg!r} did not build a '
                                f'callable')
            augments.append(aug if isinstance(aug, nn.Module) else
                            _CallableAugment(aug))
        self.batch_augments = augments

    def _check_channels(self, inputs) -> None:
        channels = self.modalities.num_channels
        for i, x in enumerate(inputs):
            if x.dim() != 3 or x.shape[0] != channels:
                raise ValueError(
                    f'MultiModalSegDataPreProcessor: input {i} has shape '
                    f'{tuple(x.shape)}; expected ({channels}, H, W) for the '
                    f'modality spec ({self.modalities.layout})')

    def stack_presence(self, data_samples, batch_size: int,
                       device) -> torch.Tensor:
        """The batch's (B, M) presence from the samples' ``presence``
        fields (a sample without one has every modality)."""
        full = torch.ones(len(self.modalities), dtype=torch.bool,
                          device=device)
        rows = [full if s is None or PRESENCE_FIELD not in s else
                s.get(PRESENCE_FIELD).to(device=device, dtype=torch.bool)
                for s in (data_samples or [None] * batch_size)]
        try:
            presence = torch.stack(rows)
        except RuntimeError as e:
            raise ValueError(f'data_samples: a sample\'s {PRESENCE_FIELD} '
                             f'does not have {len(self.modalities)} entries '
                             f'({list(self.modalities.names)}): {e}') from e
        return self.modalities.check_presence(presence, batch_size)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Normalise, pad and (in training) batch-augment; stack presence.

        Args:
            data (dict): ``inputs`` (list of (C, H, W) tensors) and
                ``data_samples`` from the dataloader.
            training (bool): Apply training padding and batch augments.

        Returns:
            dict: ``inputs`` (B, C, H, W) float tensor, ``data_samples``
            and, with :attr:`with_presence`, ``presence`` (B, M) bool.
        """
        data = self.cast_data(data)  # type: ignore
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        self._check_channels(inputs)
        inputs = [(x.float() - self.mean) / self.std for x in inputs]
        presence = self.stack_presence(data_samples, len(inputs),
                                       inputs[0].device)

        if training:
            if data_samples is None:
                raise ValueError('MultiModalSegDataPreProcessor: training '
                                 'needs data_samples')
            size = self.size
            if size is None and self.size_divisor is None:
                # pad to the largest image of the batch
                size = (max(x.shape[1] for x in inputs),
                        max(x.shape[2] for x in inputs))
            inputs, data_samples = stack_batch(
                inputs=inputs,
                data_samples=data_samples,
                size=size,
                size_divisor=self.size_divisor,
                pad_val=self.pad_val,
                seg_pad_val=self.seg_pad_val)
            for aug in self.batch_augments:
                inputs, data_samples = aug(inputs, data_samples)
        else:
            img_size = inputs[0].shape[1:]
            if not all(x.shape[1:] == img_size for x in inputs):
                raise ValueError('MultiModalSegDataPreProcessor: the images '
                                 'of a test batch must have the same size')
            if self.test_cfg:
                inputs, padded_samples = stack_batch(
                    inputs=inputs,
                    size=self.test_cfg.get('size', None),
                    size_divisor=self.test_cfg.get('size_divisor', None),
                    pad_val=self.pad_val,
                    seg_pad_val=self.seg_pad_val)
                if data_samples is not None:
                    for sample, pad_info in zip(data_samples,
                                                padded_samples):
                        sample.set_metainfo({**pad_info})
            else:
                inputs = torch.stack(inputs, dim=0)
        if self.with_presence:
            return dict(
                inputs=inputs, data_samples=data_samples, presence=presence)
        if not bool(presence.all()):
            raise ValueError(
                'MultiModalSegDataPreProcessor: samples '
                f'{(~presence.all(1)).nonzero().flatten().tolist()} lack '
                'modalities, but the segmentor takes no presence mask; use '
                'MultiModalEncoderDecoder (modality_aux_heads=False for '
                "mmseg's auxiliary heads), which leaves them out")
        return dict(inputs=inputs, data_samples=data_samples)
