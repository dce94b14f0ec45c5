"""SGMA's segmentor: a presence mask through backbone and neck, and
modality-aware sampling (MAS) in training."""
import inspect
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList, add_prefix
from mmrsfusion.utils import stack_presence

from .multimodal_encoder_decoder import MultiModalEncoderDecoder


@MODELS.register_module()
class SGMAEncoderDecoder(MultiModalEncoderDecoder):
    """:class:`MultiModalEncoderDecoder` for incomplete modalities (SGMA).

    The (B, M) modality-presence mask of a batch is stacked from the data
    samples' ``modality_presence`` metainfo (all present when absent;
    :mod:`mmrsfusion.utils.presence`), minus ``drop_modalities`` (at
    inference, and in training with ``drop_modalities_in_training``). It
    is passed to the backbone (when its ``forward`` takes ``presence``,
    e.g. :class:`MultiStreamEncoder`, which then skips absent streams) and
    to the neck (:class:`SGFNeck`, which leaves absent modalities out of
    projection, prototypes and attention). Slide inference hands every
    window the metas of its samples, so the mask holds there too.

    Training (``loss``), per the paper::

        f_SGF, r = SGF(F(x), mask)                   # r: (B, M, h, w) / stage
        s_m      = mean_x (1 / r_m) / sum_m' (1 / r_m')   # present m only
        m*       ~ Categorical(s)                    # per sample and stage
        f_MAS    = SGF(F(x), one-hot(m*))            # the same SGF
        S_SGF, S_MAS = head([f_SGF; f_MAS])          # one batch of 2B
        L = w_sgf * CE(S_SGF) + w_mas * CE(S_MAS)

    The robustness maps are detached for the sampling (it is not
    differentiable). Inference uses SGF only.

    Args:
        mas (bool): Train with modality-aware sampling. Defaults to True;
            False trains SGF alone (the "without MAS" ablation).
        loss_weights (dict): ``sgf`` and ``mas`` weights. Defaults to
            ``dict(sgf=2.0, mas=1.0)``.
        eps (float): Floor of the robustness before inversion. Defaults
            to 1e-6.
        **kwargs: :class:`MultiModalEncoderDecoder` arguments (without
            ``auxiliary_head``; the neck must be given).

    Losses: ``decode.loss_*`` (weighted by ``sgf``) and ``mas.loss_*``
    (weighted by ``mas``), with the head's accuracies unweighted.
    """

    def __init__(self,
                 mas: bool = True,
                 loss_weights: Optional[Dict[str, float]] = None,
                 eps: float = 1e-6,
                 **kwargs) -> None:
        if kwargs.get('auxiliary_head') is not None:
            raise ValueError('SGMAEncoderDecoder: auxiliary_head is not '
                             'used by SGMA; remove it')
        if kwargs.get('neck') is None:
            raise ValueError('SGMAEncoderDecoder: set `neck` (SGFNeck)')
        super().__init__(**kwargs)
        weights = dict(sgf=2.0, mas=1.0)
        unknown = set(loss_weights or {}) - set(weights)
        if unknown:
            raise ValueError(f'model.loss_weights: unknown keys '
                             f'{sorted(unknown)}; expected sgf, mas')
        weights.update(loss_weights or {})
        self.loss_weights = weights
        self.mas = bool(mas)
        self.eps = eps
        num = getattr(self.neck, 'num_modalities', len(self.modalities))
        if num != len(self.modalities):
            raise ValueError(
                f'model.neck.num_modalities ({num}) differs from the '
                f'modality spec ({len(self.modalities)}: '
                f'{[m.name for m in self.modalities]})')
        self._backbone_takes_presence = 'presence' in inspect.signature(
            self.backbone.forward).parameters

    def presence(self, batch_img_metas: Optional[Sequence],
                 inputs: Tensor, drop: bool = True) -> Tensor:
        """(B, M) bool mask of the batch, ``drop_modalities`` removed when
        ``drop``."""
        mask = stack_presence(batch_img_metas, len(self.modalities),
                              inputs.shape[0], inputs.device)
        if drop and self.drop_modalities:
            for i, mod in enumerate(self.modalities):
                if mod.name in self.drop_modalities:
                    mask[:, i] = False
            empty = (~mask.any(dim=1)).nonzero().squeeze(1).tolist()
            if empty:
                raise ValueError(f'SGMAEncoderDecoder: samples {empty} have '
                                 f'no modality left after dropping '
                                 f'{list(self.drop_modalities)}')
        return mask

    def encode(self, inputs: Tensor, presence: Tensor) -> tuple:
        """Backbone stage maps, each (M, B, C_s, h_s, w_s), under
        ``presence`` (absent streams skipped when the backbone can)."""
        if self._backbone_takes_presence:
            return self.backbone(inputs, presence=presence)
        return self.backbone(inputs)

    def extract_feat(self, inputs: Tensor,
                     presence: Optional[Tensor] = None) -> tuple:
        """Fused neck maps under ``presence`` (default: every modality
        but ``drop_modalities``)."""
        if presence is None:
            presence = self.presence(None, inputs)
        return self.neck(self.encode(inputs, presence), presence=presence)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: Optional[List[dict]]) -> Tensor:
        """Logits (B, K, H, W); the mask comes from ``batch_img_metas``."""
        fused = self.extract_feat(inputs,
                                  self.presence(batch_img_metas, inputs))
        logits = self.decode_head(fused)
        return self.logits_to_input_size(logits, inputs.shape[2:])

    def sample_modalities(self, robustness: Sequence[Tensor],
                          presence: Tensor) -> List[Tensor]:
        """One sampled present modality per sample and stage, as (B, M)
        one-hot bool masks; probabilities from inverted robustness."""
        picks = []
        for rob in robustness:
            inv = 1.0 / rob.detach().clamp_min(self.eps)
            inv = inv * presence[..., None, None]
            probs = (inv / inv.sum(dim=1, keepdim=True)).mean(dim=(2, 3))
            idx = torch.multinomial(probs, 1).squeeze(1)
            picks.append(
                torch.nn.functional.one_hot(idx, presence.shape[1]).bool())
        return picks

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """SGF (and MAS) losses; see the class docstring."""
        drop = self.drop_modalities_in_training
        if drop:
            inputs = self.drop_inputs(inputs)
        presence = self.presence(
            [s.metainfo for s in data_samples], inputs, drop=drop)
        feats = self.encode(inputs, presence)
        fused, robustness = self.neck(
            feats, presence=presence, return_robustness=True)
        b = inputs.shape[0]
        if self.mas:
            mas_fused = self.neck(
                feats, presence=self.sample_modalities(robustness, presence))
            fused = [torch.cat(pair) for pair in zip(fused, mas_fused)]
        logits = self.logits_to_input_size(
            self.decode_head(fused), inputs.shape[2:])
        branches = [('decode', self.loss_weights['sgf'], logits[:b])]
        if self.mas:
            branches.append(('mas', self.loss_weights['mas'], logits[b:]))
        losses = dict()
        for prefix, weight, part in branches:
            terms = self.decode_head.loss_by_feat(part, data_samples)
            losses.update(add_prefix({
                k: v * weight if k.startswith('loss') else v
                for k, v in terms.items()
            }, prefix))
        return losses

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Main logits under the samples' masks (all present without
        samples), after :meth:`drop_inputs`."""
        metas = None if data_samples is None else [
            s.metainfo for s in data_samples]
        return self.encode_decode(self.drop_inputs(inputs), metas)
