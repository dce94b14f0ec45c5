"""The modality spec: which modalities a sample has and in which channels.

A sample's modalities travel through the pipeline as one array/tensor whose
channels are the modalities concatenated in spec order. A config declares
the spec once, at the top level::

    modalities = [
        dict(name='rgb', channels=3, kind='optical',
             mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
        dict(name='dsm', channels=1, kind='elevation', mean=[0.], std=[1.]),
    ]

and :func:`bind_config_spec` hands it to the model and every dataset;
they pass the one :class:`ModalitySpec` object on to the loader, the data
preprocessor, the batch augments, the backbone and the neck
(:meth:`ModalitySpec.bind`). It is saved in every checkpoint's ``meta``
(``modalities``, :meth:`ModalitySpec.to_dict`).

Per entry: ``name``; ``channels``; ``kind``, one of ``'optical'``
(photometric transforms apply; loaded as raw values), ``'elevation'`` (DSM /
nDSM; normalised per tile when loaded, see ``norm`` and ``nodata``) or
``'band'`` (any other raster, e.g. NIR or SAR; raw values); optional
``bands`` (0-based bands of the file to read), ``mean`` / ``std`` (one value
per channel, in the loaded units; needed by the data preprocessor); for
elevation only, ``norm`` (``'minmax'`` default, ``'zscore'`` or None) and
``nodata`` (no-data values besides NaN / inf; default ``(-9999.,)``).

Presence -- which modalities a sample actually has -- is a (B, M) bool
tensor in spec order (True = present), built and checked here
(:meth:`ModalitySpec.presence`, :meth:`ModalitySpec.check_presence`).
"""
import copy
import inspect
from numbers import Number
from typing import (Dict, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import torch

from mmrsfusion.io import ELEVATION_NORMS

KINDS = ('optical', 'elevation', 'band')
#: Elevation no-data values when an entry does not give ``nodata``.
DEFAULT_NODATA = (-9999., )


class Modality(NamedTuple):
    """One entry of a :class:`ModalitySpec`.

    Attributes:
        name (str): Unique name, e.g. ``'rgb'``.
        channels (int): Number of channels it occupies.
        kind (str): One of :data:`KINDS`.
        start (int): Index of its first channel in the stacked tensor.
        bands (tuple[int] | None): Bands of the file to read (None: all).
        mean, std (tuple[float] | None): Per-channel normalisation.
        norm (str | None): Elevation normalisation (elevation only).
        nodata (tuple[float]): Elevation no-data values (elevation only).
    """
    name: str
    channels: int
    kind: str
    start: int
    bands: Optional[Tuple[int, ...]] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    norm: Optional[str] = None
    nodata: Tuple[float, ...] = ()

    @property
    def stop(self) -> int:
        return self.start + self.channels

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


#: Keys an entry may have.
ENTRY_KEYS = ('name', 'channels', 'kind', 'bands', 'mean', 'std', 'norm',
              'nodata')


def _per_channel(values, name: str, channels: int,
                 where: str) -> Optional[Tuple[float, ...]]:
    if values is None:
        return None
    if isinstance(values, Number):
        values = [values]
    values = tuple(float(v) for v in values)
    if len(values) != channels:
        raise ValueError(f'{where}: {len(values)} value(s) but the modality '
                         f'{name!r} has {channels} channel(s)')
    return values


def _entry(item, i: int, start: int, field: str) -> Modality:
    """Validate one entry (a dict or a :class:`Modality`)."""
    if isinstance(item, Modality):
        item = item._asdict()
    if not isinstance(item, dict) or 'name' not in item \
            or 'channels' not in item:
        raise ValueError(f"{field}[{i}]: expected a dict with keys 'name' "
                         f"and 'channels', got {item!r}")
    unknown = sorted(set(item) - set(ENTRY_KEYS) - {'start'})
    if unknown:
        raise ValueError(f'{field}[{i}]: unknown keys {unknown}; an entry '
                         f'has {list(ENTRY_KEYS)}')
    name, channels = item['name'], item['channels']
    where = f'{field}[{i}]'
    if not isinstance(name, str) or not name:
        raise ValueError(f'{where}.name: expected a non-empty string, got '
                         f'{name!r}')
    if isinstance(channels, bool) or not isinstance(channels, int) \
            or channels < 1:
        raise ValueError(f'{where}.channels ({name}): expected a positive '
                         f'int, got {channels!r}')
    kind = item.get('kind') or ('optical' if i == 0 else 'band')
    if kind not in KINDS:
        raise ValueError(f'{where}.kind ({name}): expected one of {KINDS}, '
                         f'got {kind!r}')
    bands = item.get('bands')
    if bands is not None:
        bands = tuple(int(b) for b in bands)
        if len(bands) != channels:
            raise ValueError(f'{where}.bands ({name}): {len(bands)} band(s) '
                             f'selected for {channels} channel(s)')
    mean = _per_channel(item.get('mean'), name, channels, f'{where}.mean')
    std = _per_channel(item.get('std'), name, channels, f'{where}.std')
    if std is not None and any(v <= 0 for v in std):
        raise ValueError(f'{where}.std ({name}): must be positive, got '
                         f'{list(std)}')
    norm, nodata = item.get('norm'), item.get('nodata')
    if kind == 'elevation':
        norm = 'minmax' if 'norm' not in item else norm
        if norm not in ELEVATION_NORMS:
            raise ValueError(f'{where}.norm ({name}): expected one of '
                             f'{ELEVATION_NORMS}, got {norm!r}')
        nodata = DEFAULT_NODATA if nodata is None else tuple(
            float(v) for v in nodata)
    elif norm is not None or nodata is not None:
        raise ValueError(f"{where} ({name}): 'norm' and 'nodata' apply to "
                         f"kind 'elevation' only, not {kind!r}")
    else:
        nodata = ()
    return Modality(name, channels, kind, start, bands, mean, std, norm,
                    nodata)


class ModalitySpec:
    """The channel layout of a stacked multimodal tensor, validated once.

    Args:
        modalities (Sequence[dict | Modality]): The entries, in channel
            order (see the module docstring for their keys).
        field (str): Config field named in error messages.

    Raises:
        ValueError: An empty spec, a duplicate name or any invalid entry;
            the message names ``field[i].key`` and what was expected.
    """

    def __init__(self,
                 modalities: Sequence[Union[dict, Modality]],
                 field: str = 'modalities') -> None:
        if isinstance(modalities, (str, bytes, dict)) or not modalities:
            raise ValueError(f'{field}: expected a non-empty list of '
                             f'modality entries, got {modalities!r}')
        entries, start, seen = [], 0, set()
        for i, item in enumerate(modalities):
            mod = _entry(item, i, start, field)
            if mod.name in seen:
                raise ValueError(f'{field}[{i}].name: duplicate modality '
                                 f'{mod.name!r}')
            seen.add(mod.name)
            entries.append(mod)
            start += mod.channels
        self._mods: Tuple[Modality, ...] = tuple(entries)
        self._index = {m.name: i for i, m in enumerate(entries)}

    @classmethod
    def build(cls, spec: Union['ModalitySpec', Sequence[dict]],
              field: str = 'modalities') -> 'ModalitySpec':
        """``spec`` itself if it is a :class:`ModalitySpec` (the one object
        is passed on, not re-parsed), else a new one from its entries."""
        return spec if isinstance(spec, cls) else cls(spec, field)

    # -- the entries --------------------------------------------------------

    def __iter__(self) -> Iterator[Modality]:
        return iter(self._mods)

    def __len__(self) -> int:
        return len(self._mods)

    def __getitem__(self, key: Union[int, str]) -> Modality:
        return self._mods[self.index(key) if isinstance(key, str) else key]

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, ModalitySpec) and self._mods == other._mods

    def __hash__(self) -> int:
        return hash(self._mods)

    def __repr__(self) -> str:
        return f'ModalitySpec({self.layout})'

    def __reduce__(self):
        # pickled (dataloader workers, checkpoints' meta) as its plain dict
        return (type(self), (self.to_dict(), ))

    def __deepcopy__(self, memo) -> 'ModalitySpec':
        return self  # immutable: copies of a config share the one object

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(m.name for m in self._mods)

    @property
    def num_channels(self) -> int:
        return self._mods[-1].stop

    @property
    def layout(self) -> str:
        """``'rgb:3 optical, dsm:1 elevation'``: what messages show."""
        return ', '.join(f'{m.name}:{m.channels} {m.kind}' for m in self)

    def index(self, name: str) -> int:
        """Position of modality ``name``; a KeyError naming the spec."""
        if name not in self._index:
            raise KeyError(f'unknown modality {name!r}; the spec has '
                           f'{list(self.names)}')
        return self._index[name]

    def check_names(self, names: Union[str, Sequence[str], None],
                    field: str) -> Tuple[str, ...]:
        """``names`` as a tuple (a str is one name, None none), each a
        modality of the spec; else a ValueError naming ``field``."""
        if names is None:
            return ()
        names = (names, ) if isinstance(names, str) else tuple(names)
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise ValueError(f'{field}: unknown modalities {unknown}; the '
                             f'modality spec has {list(self.names)}')
        return names

    def mean_std(self, field: str = 'modalities'
                 ) -> Tuple[List[float], List[float]]:
        """The per-channel ``mean`` and ``std`` of the whole stack.

        Raises:
            ValueError: A modality lacks ``mean`` or ``std``.
        """
        mean, std = [], []
        for i, mod in enumerate(self):
            for key, out in (('mean', mean), ('std', std)):
                values = getattr(mod, key)
                if values is None:
                    raise ValueError(
                        f"{field}[{i}] ({mod.name}): missing '{key}' (a list "
                        f'of {mod.channels} value(s), one per channel)')
                out.extend(values)
        return mean, std

    # -- serialisation ------------------------------------------------------

    def to_dict(self) -> List[dict]:
        """The entries as plain dicts (what a config or checkpoint holds);
        ``ModalitySpec(spec.to_dict()) == spec``."""
        out = []
        for mod in self:
            item = dict(name=mod.name, channels=mod.channels, kind=mod.kind)
            for key in ('bands', 'mean', 'std'):
                if getattr(mod, key) is not None:
                    item[key] = list(getattr(mod, key))
            if mod.kind == 'elevation':
                item.update(norm=mod.norm, nodata=list(mod.nodata))
            out.append(item)
        return out

    @classmethod
    def from_dict(cls, entries: Sequence[dict],
                  field: str = 'modalities') -> 'ModalitySpec':
        return cls(entries, field)

    def differs(self, other: 'ModalitySpec', this: str,
                that: str) -> Optional[str]:
        """None if ``other`` equals this spec, else a message naming both
        sides (``this`` and ``that``) and their layouts."""
        if other == self:
            return None
        if [m[:4] for m in other] == [m[:4] for m in self]:
            diff = [
                f'{m.name}.{key}: {getattr(m, key)} vs {getattr(o, key)}'
                for m, o in zip(self, other) for key in Modality._fields[4:]
                if getattr(m, key) != getattr(o, key)
            ]
            detail = '; '.join(diff)
        else:
            detail = f'[{self.layout}] vs [{other.layout}]'
        return (f'{this} and {that} declare different modality specs: '
                f'{detail}')

    def check_same(self, other: 'ModalitySpec', this: str,
                   that: str) -> None:
        """A ValueError (see :meth:`differs`) unless ``other == self``."""
        message = self.differs(other, this, that)
        if message:
            raise ValueError(f'{message}. Declare the spec once (the '
                             f'config\'s top-level `modalities`)')

    # -- tensors ------------------------------------------------------------

    def check_channels(self, x: torch.Tensor, dim: int = 1) -> None:
        if x.shape[dim] != self.num_channels:
            raise ValueError(
                f'expected {self.num_channels} channels ({self.layout}) '
                f'along dim {dim}, got a tensor of shape {tuple(x.shape)}')

    def split(self, x: torch.Tensor,
              dim: int = 1) -> Dict[str, torch.Tensor]:
        """Views of ``x`` (e.g. (B, C, H, W) with ``dim=1``) per modality,
        keyed by name in spec order."""
        self.check_channels(x, dim)
        return {m.name: x.narrow(dim, m.start, m.channels) for m in self}

    def select(self, x: torch.Tensor, names: Sequence[str],
               dim: int = 1) -> torch.Tensor:
        """The channels of ``names`` (in the order given) of ``x``."""
        parts = self.split(x, dim)
        return torch.cat([parts[n] for n in self.check_names(
            names, 'names')], dim=dim)

    def presence(self,
                 absent: Union[str, Sequence[str], None] = None,
                 batch_size: int = 1,
                 device=None) -> torch.Tensor:
        """A (B, M) bool mask with ``absent`` False for every sample."""
        absent = self.check_names(absent, 'absent')
        row = [name not in absent for name in self.names]
        mask = torch.tensor([row] * batch_size, dtype=torch.bool,
                            device=device)
        self.check_presence(mask)
        return mask

    def check_presence(self, presence: torch.Tensor,
                       batch_size: Optional[int] = None) -> torch.Tensor:
        """``presence`` if it is a (B, M) bool tensor (B = ``batch_size``
        when given) in which every sample has a modality; else a
        ValueError saying what is wrong."""
        m = len(self)
        if not torch.is_tensor(presence) or presence.dtype != torch.bool \
                or presence.dim() != 2 or presence.shape[1] != m or \
                (batch_size is not None and presence.shape[0] != batch_size):
            shape = tuple(presence.shape) if torch.is_tensor(presence) \
                else type(presence).__name__
            raise ValueError(
                f'presence: expected a bool tensor of shape '
                f'({"B" if batch_size is None else batch_size}, {m}) '
                f'(modalities {list(self.names)}), got {shape}')
        empty = (~presence.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f'presence: samples {empty} have no modality '
                             f'present; at least one is needed')
        return presence

    def zero_absent(self, x: torch.Tensor,
                    presence: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) ``x`` with each sample's absent modalities zeroed
        (a new tensor; ``x`` itself when every modality is present)."""
        if bool(presence.all()):
            return x
        absent = torch.repeat_interleave(
            ~presence, torch.tensor([m.channels for m in self],
                                    device=presence.device), dim=1)
        return x.masked_fill(absent[:, :, None, None], 0)

    # -- configs ------------------------------------------------------------

    def bind(self, cfg, registry, field: str):
        """Hand this spec to a component's config.

        A config dict whose class takes a ``modalities`` argument (see
        :func:`takes_modalities`) gets this object (in a copy of the dict);
        one that already sets ``modalities`` must state this very spec, else
        a ValueError names ``field`` and both layouts. Anything else (no
        such argument, a built module) is returned as is.
        """
        if not takes_modalities(cfg, registry):
            return cfg
        if cfg.get('modalities') is not None:
            self.check_same(
                ModalitySpec.build(cfg['modalities'], f'{field}.modalities'),
                'model.modalities', f'{field}.modalities')
        bound = copy.copy(cfg)
        bound['modalities'] = self
        return bound


def takes_modalities(cfg, registry) -> bool:
    """Whether ``cfg`` is a config dict whose class (looked up in
    ``registry``) takes a ``modalities`` argument, itself or through
    ``**kwargs`` passed to a base class."""
    if not isinstance(cfg, dict):
        return False
    cls = cfg.get('type')
    if isinstance(cls, str):
        cls = registry.get(cls)
    if not inspect.isclass(cls):
        return False  # unknown types fail when built, with mmengine's error
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        if 'modalities' in params:
            return True
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return False
    return False


def count_modalities(modalities: Optional[ModalitySpec],
                     num_modalities: Optional[int], field: str) -> int:
    """M for a module built either with the model's spec (handed down by
    the segmentor) or, standalone, with ``num_modalities``; both given must
    agree."""
    if modalities is None and num_modalities is None:
        raise ValueError(f'{field}: give modalities (the model\'s spec) or '
                         f'num_modalities')
    if modalities is None:
        return int(num_modalities)
    num = len(ModalitySpec.build(modalities, f'{field}.modalities'))
    if num_modalities is not None and num_modalities != num:
        raise ValueError(f'{field}.num_modalities={num_modalities} but the '
                         f'modality spec has {num} modalities')
    return num
