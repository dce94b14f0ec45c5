"""Encoder-decoder segmentor for one stacked multimodal input tensor."""
import copy
import math
import sys
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.utils import ProgressBar
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList, add_prefix)
from mmrsfusion.models.utils import accumulate_windows, slide_windows
from mmrsfusion.utils import (check_slide_cfg, fill_modalities,
                              parse_modalities)


@MODELS.register_module()
class MultiModalEncoderDecoder(EncoderDecoder):
    """mmseg's :class:`EncoderDecoder` for stacked multimodal inputs, with
    per-modality auxiliary heads trained on hard pixels (MoBaNet).

    The input is one (B, C_total, H, W) tensor, its channels the modalities
    of ``modalities`` in order. ``backbone -> neck`` produce the fused maps
    the ``decode_head`` reads; everything mmseg does after that (whole and
    slide inference, ``predict``, post-processing, TTA) is inherited.

    Differences from :class:`EncoderDecoder`:

    - Logits are brought to the input size by upsampling them to the size
      padded up to a multiple of ``patch_size`` (what a ViT backbone sees
      after padding the input bottom/right) and cropping back, so padded
      features are never stretched over the image. Without a patch size
      they are resized to the input size, as mmseg does. This holds in
      training too: the decode head's loss sees label-sized logits.
    - ``auxiliary_head`` is built once per modality of ``aux_modalities``
      (training only; never run at inference). Head ``m`` reads the
      projected maps of modality ``m`` that the neck returns with
      ``neck(feats, return_modalities=True) -> (fused, modal)``, ``modal``
      being one (M, B, C, h, w) tensor per stage (so the head's
      ``in_index`` picks the stage). Each is supervised by ``aux_loss``
      (default :class:`HardPixelCrossEntropyLoss`, ``lambda_aux = 0.01``)
      on the pixels the main prediction gets wrong::

          L = CE(P, Y) + lambda_aux * sum_m CE(P_m, Y; Omega)

    - ``drop_modalities``: names of modalities whose channels are zeroed
      (inputs are already normalised by the data preprocessor) before
      inference, for modality-missing evaluation, e.g. ``tools/test.py
      CONFIG CKPT --cfg-options model.drop_modalities="['dsm']"``. It does
      not apply to ``loss`` unless ``drop_modalities_in_training=True``:
      then the same channels are zeroed in training too, which trains and
      tests "the same model fed the other modalities only" (a
      single-modality baseline with an identical architecture).
    - Slide inference runs ``test_cfg.batch_windows`` windows per forward
      (default 1) and sums their logits in place (:meth:`slide_inference`).

    Args:
        backbone, decode_head, neck, train_cfg, data_preprocessor,
        pretrained, init_cfg: As for :class:`EncoderDecoder`. A backbone
            that takes a ``modalities`` argument and does not set it gets
            ``data_preprocessor['modalities']``, so the spec is stated once.
        auxiliary_head (dict | list[dict], optional): One config used for
            every modality of ``aux_modalities``, or one config each.
        aux_loss (dict, optional): Loss called as ``aux_loss(aux_logits,
            main_logits, label)``. Defaults to
            ``dict(type='HardPixelCrossEntropyLoss', loss_weight=0.01)``;
            ``ignore_index`` and ``align_corners`` default to the decode
            head's.
        modalities (list[dict], optional): The modality spec. Defaults to
            the backbone's ``modalities`` attribute.
        aux_modalities (list[str], optional): Modalities given an auxiliary
            head. Defaults to all of the spec.
        drop_modalities (list[str] | str, optional): See above. Defaults to
            none.
        drop_modalities_in_training (bool): Also zero ``drop_modalities``
            in :meth:`loss` (after the data preprocessor, so after batch
            augmentations such as MCRM). Defaults to False.
        patch_size (int | tuple[int, int], optional): Defaults to the
            backbone's ``patch_size`` attribute, if any.
        test_cfg (dict, optional): As for :class:`EncoderDecoder`; defaults
            to ``dict(mode='whole')``. Slide mode also reads
            ``batch_windows`` (windows per forward, default 1).
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: OptConfigType = None,
                 auxiliary_head: Optional[Union[dict, List[dict]]] = None,
                 aux_loss: OptConfigType = None,
                 modalities: Optional[Sequence[dict]] = None,
                 aux_modalities: Optional[Sequence[str]] = None,
                 drop_modalities: Optional[Union[str, Sequence[str]]] = None,
                 drop_modalities_in_training: bool = False,
                 patch_size: Optional[Union[int, Tuple[int, int]]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None):
        if isinstance(data_preprocessor, dict):
            # the spec is declared once, in the data preprocessor
            backbone = fill_modalities(
                backbone, data_preprocessor.get('modalities'), MODELS)
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=None,
            train_cfg=train_cfg,
            test_cfg=ConfigDict(test_cfg or dict(mode='whole')),
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        check_slide_cfg(self.test_cfg)
        if modalities is None:
            modalities = getattr(self.backbone, 'modalities', None)
            if modalities is None:
                raise ValueError(
                    'MultiModalEncoderDecoder: no modality spec; set '
                    '`modalities` (or use a backbone that has one)')
        self.modalities = parse_modalities(modalities, 'model.modalities')
        self._check_same_spec()
        self.drop_modalities = drop_modalities
        self.drop_modalities_in_training = bool(drop_modalities_in_training)

        if patch_size is None:
            patch_size = getattr(self.backbone, 'patch_size', None)
        if isinstance(patch_size, int):
            patch_size = (patch_size, patch_size)
        self.patch_size = None if patch_size is None else tuple(patch_size)

        if auxiliary_head is not None:
            self._init_modality_aux_heads(auxiliary_head, aux_modalities,
                                          aux_loss)

    def _check_same_spec(self) -> None:
        """The backbone and data preprocessor, if they have a spec, must
        agree with ``modalities``: channels are dropped and split by it."""
        layout = [(m.name, m.channels) for m in self.modalities]
        for owner in ('backbone', 'data_preprocessor'):
            spec = getattr(getattr(self, owner), 'modalities', None)
            if spec is None:
                continue
            other = [(m.name, m.channels)
                     for m in parse_modalities(spec, f'model.{owner}')]
            if other != layout:
                raise ValueError(
                    f'model.modalities {layout} differs from '
                    f'model.{owner}.modalities {other}; state the spec once, '
                    'in the data preprocessor')

    def _init_modality_aux_heads(self, auxiliary_head, aux_modalities,
                                 aux_loss) -> None:
        if not self.with_neck:
            raise ValueError('MultiModalEncoderDecoder: auxiliary heads read '
                             'the per-modality maps of the neck; set `neck`')
        names = [m.name for m in self.modalities]
        if aux_modalities is None:
            aux_modalities = names
        self._check_names(aux_modalities, 'aux_modalities')
        if isinstance(auxiliary_head, dict):
            auxiliary_head = [auxiliary_head] * len(aux_modalities)
        if len(auxiliary_head) != len(aux_modalities):
            raise ValueError(
                f'model.auxiliary_head: expected one config or one per '
                f'aux modality ({len(aux_modalities)}: {list(aux_modalities)}'
                f'), got {len(auxiliary_head)}')
        self.auxiliary_head = nn.ModuleDict({
            name: MODELS.build(copy.deepcopy(cfg))
            for name, cfg in zip(aux_modalities, auxiliary_head)
        })
        self._aux_index = {name: names.index(name) for name in aux_modalities}
        aux_loss = dict(aux_loss or dict(
            type='HardPixelCrossEntropyLoss', loss_weight=0.01))
        aux_loss.setdefault('ignore_index', self.decode_head.ignore_index)
        aux_loss.setdefault('align_corners', self.align_corners)
        self.aux_loss = MODELS.build(aux_loss)

    def _check_names(self, names: Sequence[str], field: str) -> None:
        known = [m.name for m in self.modalities]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f'model.{field}: unknown modalities {unknown}; '
                             f'the modality spec has {known}')

    @property
    def drop_modalities(self) -> Tuple[str, ...]:
        """Names of the modalities zeroed at inference."""
        return self._drop_modalities

    @drop_modalities.setter
    def drop_modalities(self, names: Optional[Union[str,
                                                    Sequence[str]]]) -> None:
        if names is None:
            names = ()
        elif isinstance(names, str):
            names = (names, )
        names = tuple(names)
        self._check_names(names, 'drop_modalities')
        self._drop_modalities = names

    def drop_inputs(self, inputs: Tensor) -> Tensor:
        """``inputs`` with the channels of ``drop_modalities`` zeroed (a new
        tensor; ``inputs`` itself when nothing is dropped)."""
        if not self._drop_modalities:
            return inputs
        expected = self.modalities[-1].stop
        if inputs.shape[1] != expected:
            raise ValueError(f'MultiModalEncoderDecoder: expected {expected} '
                             f'input channels, got {tuple(inputs.shape)}')
        inputs = inputs.clone()
        for m in self.modalities:
            if m.name in self._drop_modalities:
                inputs[:, m.slice] = 0
        return inputs

    def logits_to_input_size(self, logits: Tensor,
                             size: Sequence[int]) -> Tensor:
        """Upsample ``logits`` to the input ``size`` padded up to the patch
        multiple, then crop the padding off."""
        height, width = size
        if self.patch_size is None:
            padded = (height, width)
        else:
            ph, pw = self.patch_size
            padded = (math.ceil(height / ph) * ph, math.ceil(width / pw) * pw)
        if tuple(logits.shape[2:]) != padded:
            logits = resize(
                logits,
                size=padded,
                mode='bilinear',
                align_corners=self.align_corners)
        return logits[:, :, :height, :width]

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits (B, K, H, W) of the main head for inputs (B, C, H, W)."""
        logits = self.decode_head(self.extract_feat(inputs))
        return self.logits_to_input_size(logits, inputs.shape[2:])

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """mmseg's sliding-window inference, ``test_cfg.batch_windows``
        windows per forward.

        Same windows, same sums in the same order as
        :meth:`EncoderDecoder.slide_inference`, but logits are added in
        place into one (B, K, H, W) map instead of a zero-padded full-size
        copy per window, so memory is the tile's logits plus one batch of
        windows. Tiles of more than 100 windows get a progress bar.

        Args:
            inputs (Tensor): (B, C, H, W), already normalised.
            batch_img_metas (list[dict]): Their ``img_shape`` is set to the
                window size, as mmseg does.

        Returns:
            Tensor: (B, K, H, W) logits averaged over the windows.
        """
        height, width = inputs.shape[2:]
        windows = slide_windows(height, width, self.test_cfg.crop_size,
                                self.test_cfg.stride)
        y1, y2, x1, x2 = windows[0]
        batch_img_metas[0]['img_shape'] = (y2 - y1, x2 - x1)
        logit_sum = inputs.new_zeros(
            (inputs.shape[0], self.out_channels, height, width))
        count = inputs.new_zeros((1, 1, height, width))
        # the current stdout (ProgressBar's default is bound at import)
        bar = ProgressBar(len(windows), file=sys.stdout) \
            if len(windows) > 100 else None
        accumulate_windows(
            lambda crops: self.encode_decode(crops, batch_img_metas),
            inputs,
            windows,
            logit_sum,
            count,
            batch_windows=int(self.test_cfg.get('batch_windows', 1)),
            progress=None if bar is None else bar.update)
        if bar is not None:
            bar.file.write('\n')
        return logit_sum / count

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses: ``decode.*`` from the decode head on label-sized logits
        and, with auxiliary heads, ``aux_<modality>.<aux loss name>``.
        With ``drop_modalities_in_training`` the ``drop_modalities`` are
        zeroed first."""
        if self.drop_modalities_in_training:
            inputs = self.drop_inputs(inputs)
        feats = self.backbone(inputs)
        if self.with_auxiliary_head:
            fused, modal = self.neck(feats, return_modalities=True)
        else:
            fused = self.neck(feats) if self.with_neck else feats
        size = inputs.shape[2:]
        logits = self.logits_to_input_size(
            self.decode_head(fused), size)
        losses = add_prefix(
            self.decode_head.loss_by_feat(logits, data_samples), 'decode')
        if not self.with_auxiliary_head:
            return losses
        label = self.decode_head._stack_batch_gt(data_samples)
        # one argmax of the main logits serves every auxiliary head
        hard_mask = getattr(self.aux_loss, 'hard_mask', None)
        shared = {} if hard_mask is None else dict(
            hard_mask=hard_mask(logits, label))
        for name, head in self.auxiliary_head.items():
            idx = self._aux_index[name]
            aux_logits = self.logits_to_input_size(
                head([stage[idx] for stage in modal]), size)
            losses[f'aux_{name}.{self.aux_loss.loss_name}'] = self.aux_loss(
                aux_logits, logits, label, **shared)
        return losses

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """mmseg's ``predict`` after :meth:`drop_inputs`."""
        return super().predict(self.drop_inputs(inputs), data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Main logits (B, K, H, W) at the input size, after
        :meth:`drop_inputs`; no post-processing."""
        return self.encode_decode(self.drop_inputs(inputs), None)
