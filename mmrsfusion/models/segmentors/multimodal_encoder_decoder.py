"""Encoder-decoder segmentor for one stacked multimodal input tensor."""
import copy
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList, add_prefix)
from mmrsfusion.models.utils import accumulate_windows, slide_windows
from mmrsfusion.utils import ModalitySpec, Progress, check_slide_cfg


@MODELS.register_module()
class MultiModalEncoderDecoder(EncoderDecoder):
    """mmseg's :class:`EncoderDecoder` for stacked multimodal inputs, with
    per-modality auxiliary heads trained on hard pixels (MoBaNet).

    The input is one (B, C_total, H, W) tensor, its channels the modalities
    of ``modalities`` in order, and a (B, M) bool ``presence`` (which
    modalities each sample has; the data preprocessor stacks it, default
    all). The segmentor owns the one :class:`ModalitySpec` of the model and
    hands it to the data preprocessor, backbone and neck (those whose class
    takes ``modalities``). ``backbone -> neck`` produce the fused maps the
    ``decode_head`` reads; post-processing is mmseg's.

    Presence: :meth:`apply_presence` (the one place where absent channels
    are zeroed, after normalisation and batch augments) runs first in
    :meth:`loss`, :meth:`predict` and :meth:`_forward`; ``presence`` is then
    passed down to :meth:`encode_decode`, expanded with the windows in
    slide inference, so a mask-aware subclass (SGMA) can leave absent
    modalities out.

    Differences from :class:`EncoderDecoder`:

    - Logits are brought to the input size by upsampling them to the size
      padded up to a multiple of ``patch_size`` (what a ViT backbone sees
      after padding the input bottom/right) and cropping back, so padded
      features are never stretched over the image. Without a patch size
      they are resized to the input size, as mmseg does. This holds in
      training too: the decode head's loss sees label-sized logits.
    - ``auxiliary_head`` (with ``modality_aux_heads``, the default) is
      built once per modality of ``aux_modalities``
      (training only; never run at inference). Head ``m`` reads the
      projected maps of modality ``m`` that the neck returns with
      ``neck(feats, return_modalities=True) -> (fused, modal)``, ``modal``
      being one (M, B, C, h, w) tensor per stage (so the head's
      ``in_index`` picks the stage). Each is supervised by ``aux_loss``
      (default :class:`HardPixelCrossEntropyLoss`, ``lambda_aux = 0.01``)
      on the pixels the main prediction gets wrong::

          L = CE(P, Y) + lambda_aux * sum_m CE(P_m, Y; Omega)

    - ``absent``: names of modalities made absent at inference (for every
      sample), for modality-missing evaluation, e.g. ``tools/test.py
      CONFIG CKPT --cfg-options model.absent="['dsm']"``. It does not apply
      to ``loss`` unless ``absent_in_training=True``: then the same
      modalities are absent in training too, which trains and tests "the
      same model fed the other modalities only" (a single-modality baseline
      with an identical architecture).
    - Slide inference runs ``test_cfg.batch_windows`` windows per forward
      (default 1) and sums their logits in place (:meth:`slide_inference`).

    Args:
        backbone, decode_head, neck, train_cfg, data_preprocessor,
        pretrained, init_cfg: As for :class:`EncoderDecoder`; those whose
            class takes ``modalities`` get this model's spec.
        auxiliary_head (dict | list[dict], optional): One config used for
            every modality of ``aux_modalities``, or one config each; with
            ``modality_aux_heads=False``, mmseg's auxiliary head(s) on the
            fused maps (e.g. an FCNHead of an early-fusion baseline).
        modality_aux_heads (bool): See ``auxiliary_head``. Defaults to
            True.
        aux_loss (dict, optional): Loss called as ``aux_loss(aux_logits,
            main_logits, label)``. Defaults to
            ``dict(type='HardPixelCrossEntropyLoss', loss_weight=0.01)``;
            ``ignore_index`` and ``align_corners`` default to the decode
            head's.
        modalities (ModalitySpec | list[dict]): The modality spec (a config
            declares it once, at the top level, and
            :func:`~mmrsfusion.utils.bind_config_spec` puts it here).
        aux_modalities (list[str], optional): Modalities given an auxiliary
            head. Defaults to all of the spec.
        absent (list[str] | str, optional): See above. Defaults to none.
        absent_in_training (bool): ``absent`` in :meth:`loss` too.
            Defaults to False.
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
                 modality_aux_heads: bool = True,
                 aux_loss: OptConfigType = None,
                 modalities: Union[ModalitySpec, Sequence[dict], None] = None,
                 aux_modalities: Optional[Sequence[str]] = None,
                 absent: Optional[Union[str, Sequence[str]]] = None,
                 absent_in_training: bool = False,
                 patch_size: Optional[Union[int, Tuple[int, int]]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None):
        if modalities is None:
            raise ValueError(
                'model.modalities: no modality spec; declare the config\'s '
                'top-level `modalities` (or set model.modalities)')
        spec = ModalitySpec.build(modalities, 'model.modalities')
        super().__init__(
            backbone=spec.bind(backbone, MODELS, 'model.backbone'),
            decode_head=decode_head,
            neck=spec.bind(neck, MODELS, 'model.neck'),
            auxiliary_head=None if modality_aux_heads else auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=ConfigDict(test_cfg or dict(mode='whole')),
            data_preprocessor=spec.bind(data_preprocessor, MODELS,
                                        'model.data_preprocessor'),
            pretrained=pretrained,
            init_cfg=init_cfg)
        check_slide_cfg(self.test_cfg)
        if self.test_cfg.get('mode', 'whole') not in ('slide', 'whole'):
            raise ValueError(f"model.test_cfg.mode: expected 'slide' or "
                             f"'whole', got {self.test_cfg.mode!r}")
        self.modalities = spec
        if hasattr(self.data_preprocessor, 'with_presence'):
            self.data_preprocessor.with_presence = True
        self.absent = absent
        self.absent_in_training = bool(absent_in_training)

        if patch_size is None:
            patch_size = getattr(self.backbone, 'patch_size', None)
        if isinstance(patch_size, int):
            patch_size = (patch_size, patch_size)
        self.patch_size = None if patch_size is None else tuple(patch_size)

        self.modality_aux_heads = modality_aux_heads
        if auxiliary_head is not None and modality_aux_heads:
            self._init_modality_aux_heads(auxiliary_head, aux_modalities,
                                          aux_loss)

    def _init_modality_aux_heads(self, auxiliary_head, aux_modalities,
                                 aux_loss) -> None:
        if not self.with_neck:
            raise ValueError('MultiModalEncoderDecoder: auxiliary heads read '
                             'the per-modality maps of the neck; set `neck`')
        names = self.modalities.names
        aux_modalities = names if aux_modalities is None else \
            self.modalities.check_names(aux_modalities,
                                        'model.aux_modalities')
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

    @property
    def absent(self) -> Tuple[str, ...]:
        """Names of the modalities absent at inference (see the class
        docstring)."""
        return self._absent

    @absent.setter
    def absent(self, names: Optional[Union[str, Sequence[str]]]) -> None:
        names = self.modalities.check_names(names, 'model.absent')
        if set(names) >= set(self.modalities.names):
            raise ValueError(f'model.absent: {list(names)} leaves no '
                             f'modality; at least one is needed')
        self._absent = names

    def apply_presence(self,
                       inputs: Tensor,
                       presence: Optional[Tensor] = None,
                       training: bool = False) -> Tuple[Tensor, Tensor]:
        """The batch's presence and its inputs with absent channels zeroed.

        Args:
            inputs (Tensor): (B, C, H, W), normalised.
            presence (Tensor, optional): (B, M) bool; None: all present.
            training (bool): Apply ``absent`` only with
                ``absent_in_training``.

        Returns:
            tuple: ``(inputs, presence)``, ``presence`` without ``absent``
            and checked (every sample keeps a modality).

        Raises:
            ValueError: A sample without a present modality, or NaN / inf
                in a present modality's channels (named).
        """
        b = inputs.shape[0]
        if presence is None:
            presence = inputs.new_ones((b, len(self.modalities)),
                                       dtype=torch.bool)
        if self._absent and (self.absent_in_training or not training):
            presence = presence & self.modalities.presence(
                self._absent, device=presence.device)
        presence = self.modalities.check_presence(presence, b)
        inputs = self.modalities.zero_absent(inputs, presence)
        finite = torch.isfinite(inputs).flatten(2).all(-1)  # (B, C)
        if not bool(finite.all()):
            bad = [m.name for m in self.modalities
                   if not bool(finite[:, m.slice].all())]
            raise ValueError(
                f'inputs: NaN or inf in the present modalities {bad}; give '
                f'finite values (no-data as the loader fills it) or mark '
                f'them absent in presence')
        return inputs, presence

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

    def encode_decode(self,
                      inputs: Tensor,
                      batch_img_metas: Optional[List[dict]],
                      presence: Optional[Tensor] = None) -> Tensor:
        """Logits (B, K, H, W) of the main head for inputs (B, C, H, W)
        whose absent channels :meth:`apply_presence` zeroed (``presence``
        is for mask-aware subclasses)."""
        logits = self.decode_head(self.extract_feat(inputs))
        return self.logits_to_input_size(logits, inputs.shape[2:])

    def inference(self,
                  inputs: Tensor,
                  batch_img_metas: List[dict],
                  presence: Optional[Tensor] = None) -> Tensor:
        """Slide or whole inference (``test_cfg.mode``) under
        ``presence``."""
        if self.test_cfg.get('mode', 'whole') == 'slide':
            return self.slide_inference(inputs, batch_img_metas, presence)
        return self.whole_inference(inputs, batch_img_metas, presence)

    def whole_inference(self,
                        inputs: Tensor,
                        batch_img_metas: List[dict],
                        presence: Optional[Tensor] = None) -> Tensor:
        """Logits of the whole inputs, as mmseg's ``whole_inference``."""
        return self.encode_decode(inputs, batch_img_metas, presence)

    def slide_inference(self,
                        inputs: Tensor,
                        batch_img_metas: List[dict],
                        presence: Optional[Tensor] = None) -> Tensor:
        """mmseg's sliding-window inference, ``test_cfg.batch_windows``
        windows per forward.

        Same windows, same sums in the same order as
        :meth:`EncoderDecoder.slide_inference`, but logits are added in
        place into one (B, K, H, W) map instead of a zero-padded full-size
        copy per window, so memory is the tile's logits plus one batch of
        windows. A tile that takes long reports windows done and an ETA
        (:class:`~mmrsfusion.utils.Progress`).

        Args:
            inputs (Tensor): (B, C, H, W), already normalised.
            batch_img_metas (list[dict]): Their ``img_shape`` is set to the
                window size, as mmseg does.
            presence (Tensor, optional): (B, M), repeated for each batched
                window (:func:`accumulate_windows`).

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
        progress = Progress(len(windows), 'windows')
        accumulate_windows(
            lambda crops, mask: self.encode_decode(crops, batch_img_metas,
                                                   mask),
            inputs,
            windows,
            logit_sum,
            count,
            batch_windows=int(self.test_cfg.get('batch_windows', 1)),
            progress=progress.update,
            presence=presence)
        progress.close()
        return logit_sum / count

    def forward(self,
                inputs: Tensor,
                data_samples: OptSampleList = None,
                mode: str = 'tensor',
                presence: Optional[Tensor] = None):
        """mmseg's ``forward`` (``mode`` ``'loss'``, ``'predict'`` or
        ``'tensor'``) with the batch's (B, M) ``presence``."""
        if mode == 'loss':
            return self.loss(inputs, data_samples, presence)
        if mode == 'predict':
            return self.predict(inputs, data_samples, presence)
        if mode == 'tensor':
            return self._forward(inputs, data_samples, presence)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    def loss(self,
             inputs: Tensor,
             data_samples: SampleList,
             presence: Optional[Tensor] = None) -> dict:
        """Losses: ``decode.*`` from the decode head on label-sized logits
        and, with auxiliary heads, ``aux_<modality>.<aux loss name>``."""
        inputs, _ = self.apply_presence(inputs, presence, training=True)
        feats = self.backbone(inputs)
        per_modality = self.with_auxiliary_head and self.modality_aux_heads
        if per_modality:
            fused, modal = self.neck(feats, return_modalities=True)
        else:
            fused = self.neck(feats) if self.with_neck else feats
        size = inputs.shape[2:]
        logits = self.logits_to_input_size(
            self.decode_head(fused), size)
        losses = add_prefix(
            self.decode_head.loss_by_feat(logits, data_samples), 'decode')
        if not per_modality:
            if self.with_auxiliary_head:
                losses.update(
                    self._auxiliary_head_forward_train(fused, data_samples))
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
                data_samples: OptSampleList = None,
                presence: Optional[Tensor] = None) -> SampleList:
        """mmseg's ``predict`` under ``presence`` (see
        :meth:`apply_presence`)."""
        inputs, presence = self.apply_presence(inputs, presence)
        if data_samples is not None:
            batch_img_metas = [s.metainfo for s in data_samples]
        else:
            size = inputs.shape[2:]
            batch_img_metas = [
                dict(ori_shape=size, img_shape=size, pad_shape=size,
                     padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
        seg_logits = self.inference(inputs, batch_img_metas, presence)
        return self.postprocess_result(seg_logits, data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None,
                 presence: Optional[Tensor] = None) -> Tensor:
        """Main logits (B, K, H, W) at the input size under ``presence``;
        no post-processing."""
        inputs, presence = self.apply_presence(inputs, presence)
        return self.encode_decode(inputs, None, presence)
