"""SGMA's segmentor: a presence mask through backbone and neck, and
modality-aware sampling (MAS) in training."""
import inspect
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import SampleList, add_prefix

from .multimodal_encoder_decoder import MultiModalEncoderDecoder


@MODELS.register_module()
class SGMAEncoderDecoder(MultiModalEncoderDecoder):
    """:class:`MultiModalEncoderDecoder` for incomplete modalities (SGMA).

    The batch's (B, M) presence (the data preprocessor's, minus
    ``absent``: :meth:`apply_presence`) is passed to the backbone (when its
    ``forward`` takes ``presence``, e.g. :class:`MultiStreamEncoder`, which
    then skips absent streams) and to the neck (:class:`SGFNeck`, which
    leaves absent modalities out of projection, prototypes and attention).
    Slide inference repeats it with the batched windows.

    Training (``loss``), per the paper::

        f_SGF, r = SGF(F(x), mask)                   # r: (B, M, h, w) / stage
        s_m      = mean_x (1 / r_m) / sum_m' (1 / r_m')   # present m only
        m*       ~ Categorical(s)                    # per stage (see below)
        f_MAS    = SGF(F(x), one-hot(m*))            # the same SGF
        S_SGF, S_MAS = head([f_SGF; f_MAS])          # one batch of 2B
        L = w_sgf * CE(S_SGF) + w_mas * CE(S_MAS)

    The robustness maps are detached for the sampling (it is not
    differentiable). Inference uses SGF only.

    MAS granularity (``mas_granularity``), per stage:

    - ``'iteration'`` (the paper's text: one modality per training
      iteration): one m* for the whole batch, drawn from the batch mean of
      the samples' s; a sample without m* (batches mixing subsets) gets its
      own draw.
    - ``'sample'``: one m* per sample, drawn from its own s.

    Args:
        mas (bool): Train with modality-aware sampling. Defaults to True;
            False trains SGF alone (the "without MAS" ablation).
        mas_granularity (str): ``'iteration'`` (default) or ``'sample'``;
            see above.
        loss_weights (dict): ``sgf`` and ``mas`` weights. Defaults to
            ``dict(sgf=2.0, mas=1.0)``.
        eps (float): Floor of the robustness before inversion. Defaults
            to 1e-6.
        **kwargs: :class:`MultiModalEncoderDecoder` arguments (without
            ``auxiliary_head``; the neck must be given).

    Losses: ``decode.loss_*`` (weighted by ``sgf``) and ``mas.loss_*``
    (weighted by ``mas``), with the head's accuracies unweighted.
    """

    GRANULARITIES = ('iteration', 'sample')

    def __init__(self,
                 mas: bool = True,
                 mas_granularity: str = 'iteration',
                 loss_weights: Optional[Dict[str, float]] = None,
                 eps: float = 1e-6,
                 **kwargs) -> None:
        if kwargs.get('auxiliary_head') is not None:
            raise ValueError('SGMAEncoderDecoder: auxiliary_head is not '
                             'used by SGMA; remove it')
        if mas_granularity not in self.GRANULARITIES:
            raise ValueError(f'model.mas_granularity: expected one of '
                             f'{self.GRANULARITIES}, got {mas_granularity!r}')
        if kwargs.get('neck') is None:
            raise ValueError('SGMAEncoderDecoder: set `neck` (SGFNeck)')
        super().__init__(**kwargs)
        if getattr(self.neck, 'num_modalities', None) != len(self.modalities):
            raise ValueError(
                f'model.neck: expected a neck built for the spec\'s '
                f'{len(self.modalities)} modalities '
                f'({list(self.modalities.names)}), got '
                f'num_modalities={getattr(self.neck, "num_modalities", None)}')
        weights = dict(sgf=2.0, mas=1.0)
        unknown = set(loss_weights or {}) - set(weights)
        if unknown:
            raise ValueError(f'model.loss_weights: unknown keys '
                             f'{sorted(unknown)}; expected sgf, mas')
        weights.update(loss_weights or {})
        self.loss_weights = weights
        self.mas = bool(mas)
        self.mas_granularity = mas_granularity
        self.eps = eps
        self._backbone_takes_presence = 'presence' in inspect.signature(
            self.backbone.forward).parameters

    def encode(self, inputs: Tensor, presence: Tensor) -> tuple:
        """Backbone stage maps, each (M, B, C_s, h_s, w_s), under
        ``presence`` (absent streams skipped when the backbone can)."""
        if self._backbone_takes_presence:
            return self.backbone(inputs, presence=presence)
        return self.backbone(inputs)

    def extract_feat(self, inputs: Tensor,
                     presence: Optional[Tensor] = None) -> tuple:
        """Fused neck maps under ``presence`` (default: all present)."""
        if presence is None:
            presence = self.modalities.presence(batch_size=inputs.shape[0],
                                                device=inputs.device)
        return self.neck(self.encode(inputs, presence), presence=presence)

    def encode_decode(self,
                      inputs: Tensor,
                      batch_img_metas: Optional[List[dict]],
                      presence: Optional[Tensor] = None) -> Tensor:
        """Logits (B, K, H, W) under the (B, M) ``presence``."""
        fused = self.extract_feat(inputs, presence)
        logits = self.decode_head(fused)
        return self.logits_to_input_size(logits, inputs.shape[2:])

    def sample_modalities(self, robustness: Sequence[Tensor],
                          presence: Tensor) -> List[Tensor]:
        """One sampled present modality per stage, as (B, M) one-hot bool
        masks: the same for every sample (``'iteration'``) or one per
        sample (``'sample'``); probabilities from inverted robustness.

        Args:
            robustness (Sequence[Tensor]): Per stage, (B, M, h, w).
            presence (Tensor): (B, M) bool.
        """
        picks = []
        for rob in robustness:
            inv = 1.0 / rob.detach().clamp_min(self.eps)
            inv = inv * presence[..., None, None]
            probs = (inv / inv.sum(dim=1, keepdim=True)).mean(dim=(2, 3))
            idx = torch.multinomial(probs, 1).squeeze(1)  # (B, )
            if self.mas_granularity == 'iteration':
                shared = torch.multinomial(probs.mean(0), 1)  # (1, )
                has = presence[:, shared[0]]
                idx = torch.where(has, shared.expand_as(idx), idx)
            picks.append(
                torch.nn.functional.one_hot(idx, presence.shape[1]).bool())
        return picks

    def loss(self,
             inputs: Tensor,
             data_samples: SampleList,
             presence: Optional[Tensor] = None) -> dict:
        """SGF (and MAS) losses; see the class docstring."""
        inputs, presence = self.apply_presence(inputs, presence,
                                               training=True)
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
