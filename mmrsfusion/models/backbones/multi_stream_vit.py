"""One frozen pretrained ViT shared by M modality streams."""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmpretrain.models.utils import resize_pos_embed
from mmseg.registry import MODELS

from mmrsfusion.utils import ModalitySpec
from ..peft import inject_peft, peft_wrappers, run_shared_block
from .frozen_weights import frozen_keys, load_frozen_weights
from .pos_embed import POS_EMBED_RESIZES, resize_pos_embed_dinov2
from .stream_patch_embed import StreamPatchEmbed, check_aux_embed
from .vit_families import build_frozen_encoder, family_spec


@MODELS.register_module()
class MultiStreamViT(BaseModule):
    """A frozen pretrained ViT (DINOv2 or SAM image encoder, built with
    mmpretrain's ``VisionTransformer`` / ``ViTSAM``) shared by M >= 1
    modality streams, with PEFT injection points.

    Data flow, for a stacked input ``(B, sum_m C_m, H, W)`` split by the
    modality spec:

    1. zero-pad bottom/right to a multiple of the patch size (never resize);
    2. patch-embed each modality: the first one (optical, 3 channels) with
       the frozen pretrained embedding, every other one with its own
       trainable embedding initialised from the pretrained one or with the
       same frozen one (see ``aux_embed``);
    3. add the frozen CLS token (DINOv2) and the frozen pos-embed, resized
       bicubically from the pretrained grid (37x37 DINOv2, 64x64 SAM) to
       the token grid ``(h, w) = (ceil(H / p), ceil(W / p))`` by the rule
       of ``pos_embed_resize``;
    4. run the shared frozen blocks on all streams as one batch of M*B;
       the PEFT wrappers injected in place act inside them: the stage
       adapter of each stage in a :class:`PreBlockWrapper` around its first
       block, the ``peft`` wrappers in the blocks' submodules;
    5. at each tap (the last block of a stage) output the streams through
       the tap transform: DINOv2 ``'norm'`` = the frozen final LayerNorm
       (the stream itself continues un-normalised); SAM ``'neck'`` = the
       frozen SAM neck (conv 1x1 C->256, LN2d, conv 3x3, LN2d); ``'none'``
       = the raw block output (the SAM default: SAM has no final norm).
       The CLS token never reaches adapters' patch tokens or outputs.

    The pretrained weights live under ``self.encoder`` (requires_grad
    False, always in eval mode); everything trainable (``aux_embeds``,
    ``stage_adapters``, the PEFT wrappers' own parameters inside
    ``self.encoder``) has requires_grad True. Trainable means
    requires_grad: :meth:`frozen_keys` is what a checkpoint may drop.

    Args:
        modalities (ModalitySpec | list[dict]): Modality spec (see
            :mod:`mmrsfusion.utils.modality_spec`; the segmentor's, handed
            down), e.g.
            ``[dict(name='rgb', channels=3), dict(name='dsm', channels=1)]``.
            The first modality uses the frozen pretrained patch embedding
            and must have 3 channels.
        family (str): ``'dinov2'`` or ``'sam'``.
        arch (str | dict): DINOv2 ``'small'|'base'|'large'|'giant'``, SAM
            ``'base'|'large'|'huge'``, or an mmpretrain arch dict
            (``embed_dims``, ``num_layers``, ``num_heads``,
            ``feedforward_channels``; SAM also ``global_attn_indexes``).
        out_indices (Sequence[int], optional): Stage taps, the 0-based index
            of the last block of each stage. Defaults to four equal stages,
            ``[(k + 1) * depth // 4 - 1 for k in range(4)]``: S/B and SAM-B
            [2, 5, 8, 11], L [5, 11, 17, 23], g [9, 19, 29, 39], SAM-H
            [7, 15, 23, 31]. Blocks after the last tap are not run.
        aux_embed (str): Patch embedding of the auxiliary modalities:
            ``'replicate'`` (reference default; a trainable copy of the
            pretrained one), ``'native'`` (a trainable ``C_m``-channel
            one) or ``'shared'`` (MFNet; the frozen pretrained one). See
            :class:`StreamPatchEmbed`.
        stage_adapter (dict, optional): Config of the per-stage adapter
            (e.g. ``dict(type='CPIA')``), built once per stage with
            ``embed_dims`` and ``num_modalities`` filled in (kept in
            ``stage_adapters``) and run on the patch tokens by a
            :class:`~mmrsfusion.models.peft.PreBlockWrapper` injected
            around the stage's first block. See
            ``mmrsfusion/models/peft/base.py``. Needs
            ``batch_streams=True``.
        peft (list[dict], optional): PEFT wrappers injected into the frozen
            encoder in place, each ``dict(type=..., targets=pattern(s),
            ...)`` with ``embed_dims`` and ``num_modalities`` filled in
            (see :func:`~mmrsfusion.models.peft.inject_peft`); blocks after
            the last tap are left alone. Needs ``batch_streams=True``.
        tap_transform (str, optional): ``'norm'`` (DINOv2), ``'neck'``
            (SAM) or ``'none'``. Defaults to ``'norm'`` for DINOv2 and
            ``'none'`` for SAM.
        pos_embed_resize (str, optional): How the pretrained pos-embed grid
            is resized to the token grid: ``'dinov2'``, the official DINOv2
            code's rule (bicubic with ``scale_factor = ((h + 0.1) / H0,
            (w + 0.1) / W0)``, see :func:`resize_pos_embed_dinov2`); or
            ``'size'``, mmpretrain's ``resize_pos_embed`` (bicubic to
            ``size=(h, w)``; the sampling points differ). Defaults to
            ``'dinov2'`` for DINOv2 and ``'size'`` for SAM.
        batch_streams (bool): Run the streams through each plain block as
            one batch (True) or one after another (False, the reference's
            way; same result; not with PEFT wrappers, ``stage_adapter``
            included).
        with_cp (bool): Activation checkpointing of the frozen blocks in
            training: each block keeps only its input for backward and
            recomputes the rest, trading one more forward of the blocks for
            their activation memory. Same losses and gradients. Defaults to
            False.
        frozen_checkpoint (str, optional): The pretrained encoder weights,
            converted by ``tools/model_converters/{dinov2,sam}.py`` or the
            official file itself. Loaded by :meth:`init_weights` and by
            :meth:`load_frozen`, so a checkpoint of the trainable weights
            alone can re-attach them. ``init_cfg=dict(type='Pretrained',
            checkpoint=...)`` is accepted as a synonym.
        encoder_cfg (dict, optional): Extra keyword arguments of the
            mmpretrain encoder over the family defaults (``img_size``: the
            input size the pretrained pos-embed grid belongs to;
            ``patch_size``; SAM ``window_size``; ...).
        init_cfg (dict, optional): mmengine initialisation config.

    Forward:
        ``(B, sum_m C_m, H, W)`` -> tuple of S tensors ``(M, B, C_s, h, w)``
        in modality-spec order, ``(h, w)`` the token grid of the padded
        input, ``C_s = self.out_channels[s]``.
    """

    def __init__(self,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 family: str = 'dinov2',
                 arch: Union[str, dict] = 'base',
                 out_indices: Optional[Sequence[int]] = None,
                 aux_embed: str = 'replicate',
                 stage_adapter: Optional[dict] = None,
                 peft: Optional[Sequence[dict]] = None,
                 tap_transform: Optional[str] = None,
                 pos_embed_resize: Optional[str] = None,
                 batch_streams: bool = True,
                 with_cp: bool = False,
                 frozen_checkpoint: Optional[str] = None,
                 encoder_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            extra = sorted(set(init_cfg) - {'type', 'checkpoint'})
            if extra:
                raise ValueError(
                    f"MultiStreamViT.init_cfg: type='Pretrained' takes only "
                    f"'checkpoint' (the file is loaded into the frozen encoder "
                    f"as frozen_checkpoint is), got {extra}")
            if frozen_checkpoint not in (None, init_cfg['checkpoint']):
                raise ValueError('frozen_checkpoint and init_cfg.checkpoint '
                                 'name different files')
            frozen_checkpoint, init_cfg = init_cfg['checkpoint'], None
        super().__init__(init_cfg=init_cfg)
        spec = family_spec(family)
        check_aux_embed(aux_embed)  # before building a large encoder
        tap_transform = tap_transform or spec['tap_transforms'][0]
        if tap_transform not in spec['tap_transforms']:
            raise ValueError(f'tap_transform for {family}: expected one of '
                             f"{spec['tap_transforms']}, got "
                             f'{tap_transform!r}')
        pos_embed_resize = pos_embed_resize or spec['pos_embed_resize']
        if pos_embed_resize not in POS_EMBED_RESIZES:
            raise ValueError(f'pos_embed_resize: expected one of '
                             f'{POS_EMBED_RESIZES}, got {pos_embed_resize!r}')
        self.family = family
        self.arch = arch
        self.tap_transform = tap_transform
        self.pos_embed_resize = pos_embed_resize
        self.batch_streams = batch_streams
        self.with_cp = with_cp
        self.frozen_checkpoint = frozen_checkpoint
        self.modalities = ModalitySpec.build(
            modalities, 'model.backbone.modalities')
        self.num_modalities = len(self.modalities)

        self.encoder = build_frozen_encoder(family, arch, encoder_cfg)
        self.embed_dims = self.encoder.embed_dims
        self.num_extra_tokens = spec['num_extra_tokens']
        # Per-modality patch embeddings (the first is the frozen one).
        self.aux_embed = aux_embed
        self.aux_embeds = StreamPatchEmbed(
            self.modalities, self.encoder.patch_embed.projection, aux_embed)
        self.patch_size = self.aux_embeds.patch_size

        # Stage taps.
        depth = self.encoder.num_layers
        if out_indices is None:
            out_indices = [(k + 1) * depth // 4 - 1 for k in range(4)]
        given = list(out_indices)
        out_indices = [i % depth if -depth <= i < depth else i for i in given]
        if (not out_indices or any(not 0 <= i < depth for i in out_indices)
                or sorted(set(out_indices)) != out_indices):
            raise ValueError(f'out_indices: expected increasing block '
                             f'indices in [0, {depth}) (or negative from '
                             f'the end), got {given}')
        self.out_indices = out_indices
        self.num_stages = len(out_indices)
        neck_dims = getattr(self.encoder, 'out_channels', 0)
        self.out_channels = [
            neck_dims if tap_transform == 'neck' else self.embed_dims
        ] * self.num_stages
        if tap_transform == 'neck' and not neck_dims:
            raise ValueError("tap_transform='neck' needs the SAM neck "
                             '(encoder out_channels > 0)')

        # PEFT injection points.
        def build(cfg, **defaults):
            cfg = copy.deepcopy(cfg)
            for key, value in defaults.items():
                cfg.setdefault(key, value)
            return MODELS.build(cfg)

        common = dict(
            embed_dims=self.embed_dims, num_modalities=self.num_modalities)
        self.stage_adapters = None if stage_adapter is None else \
            nn.ModuleList(build(stage_adapter, **common)
                          for _ in range(self.num_stages))
        self.peft = list(peft or [])
        if (self.peft or stage_adapter is not None) and not batch_streams:
            raise ValueError('peft, stage_adapter: the wrappers see the '
                             'streams as one batch; set batch_streams=True')
        # Each stage adapter wraps its stage's first block, after (around)
        # the peft wrappers, whose patterns name the blocks' submodules.
        starts = [0] + [i + 1 for i in out_indices[:-1]]
        pre_block = [
            dict(
                type='PreBlockWrapper',
                targets=f'layers.{start}',
                adapter=adapter,
                num_extra_tokens=self.num_extra_tokens)
            for start, adapter in zip(starts, self.stage_adapters or [])
        ]
        last = out_indices[-1]
        inject_peft(
            self.encoder,
            self.peft + pre_block,
            skip=lambda name: name.startswith('layers.') and int(
                name.split('.')[1]) > last,
            **common)

    # ----------------------------------------------------------- weights --
    def frozen_keys(self) -> List[str]:
        """State-dict keys (relative to this module) of the frozen part:
        the ``encoder.*`` tensors that are not trainable parameters
        (requires_grad), i.e. not those of PEFT wrappers inside it."""
        return [f'encoder.{key}' for key in frozen_keys(self.encoder)]

    def load_frozen(self,
                    checkpoint: Optional[str] = None,
                    strict: bool = True) -> List[str]:
        """Load the frozen pretrained encoder weights from a file.

        Goes through mmengine's ``CheckpointLoader``. The file may be a
        converted checkpoint or an official one (DINOv2 or SAM, recognised
        by its keys and converted on the fly). The pos-embed and SAM's
        rel-pos tables are resized to this encoder's by mmpretrain's load
        hooks. Missing and unexpected keys are logged.

        Args:
            checkpoint (str, optional): Defaults to ``frozen_checkpoint``.
            strict (bool): Raise if a frozen weight is missing from the
                file (else only log it). Defaults to True.

        Returns:
            list[str]: The frozen part's keys (:meth:`frozen_keys`), which
            a trainable-only checkpoint need not hold.

        Raises:
            ValueError: If a tensor's shape does not fit this encoder (an
                architecture mismatch), naming the file, the key and both
                shapes; or, with ``strict``, if frozen weights are missing.
        """
        filename = checkpoint or self.frozen_checkpoint
        if filename is None:
            raise ValueError('load_frozen: no checkpoint given and '
                             'frozen_checkpoint is not set')
        loaded = load_frozen_weights(
            self.encoder, filename, f'{self.family} arch={self.arch!r}',
            strict)
        MMLogger.get_current_instance().info(
            f'Loaded {loaded} frozen tensors of {self.__class__.__name__} '
            f'from {filename}')
        return self.frozen_keys()

    def init_aux_embeds(self):
        """Initialise every auxiliary patch embedding from the (frozen)
        optical one (see ``aux_embed``)."""
        self.aux_embeds.init_from(self.encoder.patch_embed.projection)

    def init_weights(self):
        """Initialise, then load the frozen weights (if
        ``frozen_checkpoint``), then copy the optical patch embedding into
        the auxiliary ones."""
        super().init_weights()
        if self.frozen_checkpoint is not None:
            self.load_frozen()
        self.init_aux_embeds()

    def train(self, mode: bool = True) -> 'MultiStreamViT':
        """Set the train mode; the frozen encoder always stays in eval
        mode, the PEFT wrappers in it follow ``mode``. (mmpretrain's
        ``train()`` returns None: not chained.)"""
        super().train(mode)
        self.encoder.train(False)
        for wrapper in peft_wrappers(self.encoder):
            wrapper.train(mode)
        return self

    # ----------------------------------------------------------- forward --
    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Pad, patch-embed every modality and add CLS token + pos-embed.

        Args:
            x (Tensor): ``(B, sum_m C_m, H, W)``.

        Returns:
            tuple: streams ``(M, B, *S, C)`` in the blocks' layout (DINOv2
            ``S = (1 + h * w,)``, SAM ``S = (h, w)``) and ``(h, w)``.
        """
        streams, hw = self.aux_embeds(x, self.encoder.patch_embed)
        enc = self.encoder
        if self.family == 'dinov2':
            cls = enc.cls_token.expand(*streams.shape[:2], -1, -1)
            streams = torch.cat([cls, streams], dim=2)
            pos = self.resized_pos_embed(enc.pos_embed, hw)
            return enc.pre_norm(enc.drop_after_pos(streams + pos)), hw
        pos = self.resized_pos_embed(enc.pos_embed.flatten(1, 2), hw)
        streams = (streams + pos).unflatten(2, hw)
        return enc.drop_after_pos(streams), hw

    def resized_pos_embed(self, pos_embed: torch.Tensor,
                          hw: Tuple[int, int]) -> torch.Tensor:
        """The pretrained ``(1, E + H0 * W0, C)`` pos-embed (``E`` = 1
        CLS position for DINOv2, 0 for SAM) resized to the token grid
        ``hw`` by ``pos_embed_resize``: ``(1, E + h * w, C)``."""
        src = self.encoder.patch_resolution
        if self.pos_embed_resize == 'dinov2':
            return resize_pos_embed_dinov2(pos_embed, src, hw,
                                           self.num_extra_tokens)
        return resize_pos_embed(pos_embed, src, hw,
                                self.encoder.interpolate_mode,
                                self.num_extra_tokens)

    def patch_tokens(self, streams: torch.Tensor) -> torch.Tensor:
        """``(M, B, *S, C)`` blocks' layout -> patch tokens ``(M, B, N, C)``
        (a view; the CLS token dropped)."""
        if self.family == 'dinov2':
            return streams[:, :, self.num_extra_tokens:]
        return streams.flatten(2, 3)

    def _tap(self, streams: torch.Tensor, hw: Tuple[int,
                                                    int]) -> torch.Tensor:
        """Output of a tap: ``(M, B, C_s, h, w)``."""
        out = self.patch_tokens(streams)
        if self.tap_transform == 'norm':
            out = self.encoder.ln1(out)
        out = out.unflatten(2, hw).permute(0, 1, 4, 2, 3)  # (M, B, C, h, w)
        if self.tap_transform == 'neck':
            out = self.encoder.channel_reduction(out.flatten(0, 1))
            out = out.unflatten(0, streams.shape[:2])
        return out.contiguous()

    def _block(self, i: int, streams: torch.Tensor) -> torch.Tensor:
        block = self.encoder.layers[i]
        if self.batch_streams:
            return run_shared_block(block, streams)
        return torch.stack([block(s) for s in streams])

    def _run_block(self, i: int, streams: torch.Tensor) -> torch.Tensor:
        """Block ``i`` on ``streams`` ``(M, B, *S, C)``, checkpointed
        with ``with_cp`` when gradients flow through it."""
        if self.with_cp and self.training and torch.is_grad_enabled() and \
                streams.requires_grad:
            return cp.checkpoint(self._block, i, streams, use_reentrant=False)
        return self._block(i, streams)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """See the class docstring."""
        streams, hw = self.embed(x)
        outs = []
        for i in range(self.out_indices[-1] + 1):
            streams = self._run_block(i, streams)
            if i in self.out_indices:
                outs.append(self._tap(streams, hw))
        return tuple(outs)
