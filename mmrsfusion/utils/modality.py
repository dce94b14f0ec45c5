"""The modality spec: how one stacked multimodal tensor is laid out.

A sample's modalities travel through the pipeline as one array/tensor whose
channels are the modalities concatenated in spec order. A config states the
spec once, e.g.::

    modalities = [
        dict(name='rgb', channels=3, kind='optical'),
        dict(name='dsm', channels=1, kind='elevation'),
    ]

``kind`` is one of ``'optical'`` (photometric transforms apply; loaded as
raw values), ``'elevation'`` (DSM / nDSM; normalised per tile when loaded)
or ``'band'`` (any other raster, e.g. a NIR or SAR band; loaded as raw
values).
"""
import copy
import inspect
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch

KINDS = ('optical', 'elevation', 'band')


class Modality(NamedTuple):
    """One entry of a parsed modality spec.

    Attributes:
        name (str): Unique name, e.g. ``'rgb'``.
        channels (int): Number of channels it occupies.
        kind (str): One of :data:`KINDS`.
        start (int): Index of its first channel in the stacked tensor.
    """
    name: str
    channels: int
    kind: str
    start: int

    @property
    def stop(self) -> int:
        return self.start + self.channels

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


ModalitySpec = Union[Sequence[dict], Sequence[Modality]]


def parse_modalities(spec: ModalitySpec,
                     field: str = 'modalities') -> Tuple[Modality, ...]:
    """Validate a modality spec and compute channel offsets.

    Args:
        spec: A sequence of dicts with keys ``name``, ``channels`` and
            optionally ``kind`` (default ``'optical'`` for the first entry,
            ``'band'`` otherwise), or already parsed :class:`Modality`.
        field: Name of the config field, used in error messages.

    Returns:
        tuple[Modality]: The parsed spec in order.

    Raises:
        ValueError: On an empty spec, a duplicate name, a non-positive
            channel count or an unknown kind. The message names ``field``.
    """
    if not spec:
        raise ValueError(f'{field}: expected at least one modality, got '
                         f'{spec!r}')
    parsed, start, seen = [], 0, set()
    for i, item in enumerate(spec):
        if isinstance(item, Modality):
            item = item._asdict()
        if not isinstance(item, dict) or 'name' not in item \
                or 'channels' not in item:
            raise ValueError(f'{field}[{i}]: expected a dict with keys '
                             f"'name' and 'channels', got {item!r}")
        name, channels = item['name'], item['channels']
        kind = item.get('kind', 'optical' if i == 0 else 'band')
        if not isinstance(name, str) or not name:
            raise ValueError(f'{field}[{i}].name: expected a non-empty '
                             f'string, got {name!r}')
        if name in seen:
            raise ValueError(f'{field}[{i}].name: duplicate modality '
                             f'{name!r}')
        if isinstance(channels, bool) or not isinstance(channels, int) \
                or channels < 1:
            raise ValueError(f'{field}[{i}].channels ({name}): expected a '
                             f'positive int, got {channels!r}')
        if kind not in KINDS:
            raise ValueError(f'{field}[{i}].kind ({name}): expected one of '
                             f'{KINDS}, got {kind!r}')
        seen.add(name)
        parsed.append(Modality(name, channels, kind, start))
        start += channels
    return tuple(parsed)


def total_channels(spec: ModalitySpec) -> int:
    """Number of channels of the stacked tensor described by ``spec``."""
    return sum(m.channels for m in parse_modalities(spec))


def split_modalities(x: torch.Tensor, spec: ModalitySpec,
                     dim: int = 1) -> Dict[str, torch.Tensor]:
    """Split a stacked tensor into its modalities.

    Args:
        x (Tensor): Stacked tensor, e.g. (B, C_total, H, W) with ``dim=1``.
        spec: The modality spec.
        dim (int): The channel dimension.

    Returns:
        dict[str, Tensor]: Views of ``x`` keyed by modality name, in spec
        order, each with ``channels`` entries along ``dim``.
    """
    mods = parse_modalities(spec)
    expected = mods[-1].stop
    if x.shape[dim] != expected:
        raise ValueError(
            f'expected {expected} channels '
            f'({", ".join(f"{m.name}:{m.channels}" for m in mods)}) along '
            f'dim {dim}, got a tensor of shape {tuple(x.shape)}')
    return {m.name: x.narrow(dim, m.start, m.channels) for m in mods}


def fill_modalities(cfg, spec: Optional[ModalitySpec], registry):
    """Let a config inherit the modality spec declared elsewhere.

    The spec is stated once, in the data preprocessor (which the dataset
    config provides); a backbone or batch augmentation that takes a
    ``modalities`` argument and does not set it gets that spec.

    Args:
        cfg: A config dict with a ``type`` (anything else is returned as
            is, e.g. an already built module).
        spec: The spec to fill in; ``None`` leaves ``cfg`` unchanged.
        registry: The registry ``cfg['type']`` is looked up in.

    Returns:
        ``cfg`` itself, or a shallow copy with ``modalities=spec`` when its
        class's ``__init__`` takes ``modalities`` and ``cfg`` lacks it.
    """
    if spec is None or not isinstance(cfg, dict) or 'modalities' in cfg:
        return cfg
    cls = cfg.get('type')
    if isinstance(cls, str):
        cls = registry.get(cls)
    if not inspect.isclass(cls) or \
            'modalities' not in inspect.signature(cls).parameters:
        return cfg  # unknown types fail when built, with mmengine's error
    filled = copy.copy(cfg)
    filled['modalities'] = spec
    return filled
