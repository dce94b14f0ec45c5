"""The modality-presence mask: which modalities a sample actually has.

Every sample may carry ``modality_presence`` in its data-sample metainfo: a
tuple of M booleans in the order of the modality spec (True = present).
The loader writes it (:class:`LoadMultiModalImageFromFiles`, where a
dataset allows missing files), :class:`RandomModalityDrop` changes it in
training, :class:`PackMultiModalSegInputs` packs it. A sample without the
field has every modality present.

Two ways a model meets an absent modality:

- every model: the data preprocessor zeroes its channels after
  normalisation (so a model that ignores the mask sees "zeroed channels",
  as with ``drop_modalities``);
- mask-aware models (``SGMAEncoderDecoder`` with ``MultiStreamEncoder`` and
  ``SGFNeck``) get the (B, M) mask itself and leave the absent modality out
  of computation and attention.
"""
from typing import Optional, Sequence

import torch

from .modality import ModalitySpec, parse_modalities

#: Metainfo key of the per-sample presence tuple.
PRESENCE_KEY = 'modality_presence'


def sample_presence(meta, num_modalities: int) -> Optional[tuple]:
    """The presence tuple of one sample (a data sample or a metainfo dict),
    or None when it has none.

    Raises:
        ValueError: The tuple does not have ``num_modalities`` entries.
    """
    if hasattr(meta, 'metainfo'):
        meta = meta.metainfo
    value = None if meta is None else meta.get(PRESENCE_KEY)
    if value is None:
        return None
    value = tuple(bool(v) for v in value)
    if len(value) != num_modalities:
        raise ValueError(f'{PRESENCE_KEY}: expected {num_modalities} '
                         f'entries (one per modality of the spec), got '
                         f'{len(value)}: {value}')
    return value


def stack_presence(metas: Optional[Sequence],
                   num_modalities: int,
                   batch_size: int,
                   device=None) -> torch.Tensor:
    """The (B, M) boolean presence mask of a batch.

    Args:
        metas: Data samples or metainfo dicts, one per sample, or None
            (every modality present).
        num_modalities (int): M.
        batch_size (int): B, used when ``metas`` is None.
        device: Device of the result.

    Raises:
        ValueError: A sample has no modality present, or a wrong length.
    """
    if metas is None:
        return torch.ones(batch_size, num_modalities, dtype=torch.bool,
                          device=device)
    rows = []
    for i, meta in enumerate(metas):
        value = sample_presence(meta, num_modalities)
        if value is None:
            value = (True, ) * num_modalities
        if not any(value):
            raise ValueError(f'sample {i}: {PRESENCE_KEY} marks every '
                             f'modality absent; at least one is needed')
        rows.append(value)
    return torch.tensor(rows, dtype=torch.bool, device=device).reshape(
        len(rows), num_modalities)


def zero_absent(x: torch.Tensor, presence: Sequence[bool],
                spec: ModalitySpec) -> torch.Tensor:
    """One sample's (C, H, W) tensor with the channels of its absent
    modalities zeroed (``x`` itself when all are present)."""
    mods = parse_modalities(spec)
    if all(presence):
        return x
    x = x.clone()
    for mod, present in zip(mods, presence):
        if not present:
            x[mod.slice] = 0
    return x
