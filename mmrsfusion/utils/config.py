"""Loading a config the way ``tools/train.py`` does, for the analysis tools
that build a model without a runner; binding its modality spec; checking
config values."""
from numbers import Integral
from typing import Optional, Tuple

from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS, MODELS
from .modality_spec import ModalitySpec, takes_modalities

#: The dataloaders whose datasets get the config's modality spec.
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def load_config(filename: str, cfg_options: Optional[dict] = None) -> Config:
    """Read ``filename`` (``Config.fromfile`` also imports its
    ``custom_imports``), merge ``cfg_options`` (``--cfg-options``) and set
    the config's default scope (``mmseg`` if unset), so that every module
    it names resolves in the registries."""
    cfg = Config.fromfile(filename)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return bind_config_spec(cfg)


def _bind(cfg, entries: list, registry, field: str, merge=None) -> None:
    """Set ``modalities`` of ``cfg`` (a dict whose class takes it) to
    ``entries``, else of its ``data_preprocessor`` (an mmseg segmentor with
    ours), else of the configs it wraps (``module``, ``dataset``,
    ``datasets``); one that states its own must state the same spec.
    ``merge`` (a dict) is merged into the model's ``data_preprocessor``."""
    if not isinstance(cfg, dict):
        return
    pre = cfg.get('data_preprocessor')
    if not takes_modalities(cfg, registry) and takes_modalities(pre, registry):
        if merge:
            pre.update(merge)
        _bind(pre, entries, registry, f'{field}.data_preprocessor')
        return
    if takes_modalities(cfg, registry):
        own = cfg.get('modalities')
        if own is not None:
            ModalitySpec(entries).check_same(
                ModalitySpec.build(own, f'{field}.modalities'),
                'modalities', f'{field}.modalities')
        cfg['modalities'] = entries
        if merge and isinstance(cfg.get('data_preprocessor'), dict):
            cfg['data_preprocessor'].update(merge)
        return
    for key in ('module', 'dataset'):
        _bind(cfg.get(key), entries, registry, f'{field}.{key}', merge)
    for i, inner in enumerate(cfg.get('datasets') or []):
        _bind(inner, entries, registry, f'{field}.datasets[{i}]', merge)


def bind_config_spec(cfg: Config) -> Config:
    """Hand the config's top-level ``modalities`` (the one declaration of
    its modality spec) to ``model`` and to the dataset of every dataloader,
    as plain dicts (a config stays dumpable); the model passes one
    :class:`ModalitySpec` object on to its parts, a dataset to its
    pipeline. A top-level ``data_preprocessor`` (what the dataset config
    says about batching its samples, e.g. ``size=crop_size``) is merged into
    the model's, so no config re-wires either.

    A model or dataset that states its own ``modalities`` must state the
    same spec: otherwise the data would be loaded in one layout and read
    in another, so a ValueError names both fields. A config without a
    top-level ``modalities`` is returned unchanged (its model and datasets
    then carry their own).

    Returns:
        ``cfg``, changed in place.
    """
    declared = cfg.get('modalities')
    if declared is None:
        return cfg
    entries = ModalitySpec(declared, 'modalities').to_dict()
    _bind(cfg.get('model'), entries, MODELS, 'model',
          cfg.get('data_preprocessor'))
    for loader in DATALOADERS:
        _bind((cfg.get(loader) or {}).get('dataset'), entries, DATASETS,
              f'{loader}.dataset')
    return cfg


def positive_pair(value, field: str) -> Tuple[int, int]:
    """``value`` (an int or an ``(h, w)`` pair of ints) as ``(h, w)``,
    both > 0; else a ValueError naming the config ``field``."""
    pair = (value, value) if isinstance(value, Integral) else value
    try:
        ok = len(pair) == 2 and all(
            isinstance(v, Integral) and v > 0 for v in pair)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f'{field}: expected a positive int or a pair (h, w) '
                         f'of positive ints, got {value!r}')
    return int(pair[0]), int(pair[1])


def check_slide_cfg(test_cfg, field: str = 'model.test_cfg') -> None:
    """A sliding-window ``test_cfg`` (``mode='slide'``) needs positive
    ``crop_size`` and ``stride`` (see :func:`positive_pair`)."""
    if test_cfg is not None and test_cfg.get('mode') == 'slide':
        for key in ('crop_size', 'stride'):
            positive_pair(test_cfg.get(key), f'{field}.{key}')
