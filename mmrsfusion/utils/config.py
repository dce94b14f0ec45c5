"""Loading a config the way ``tools/train.py`` does, for the analysis tools
that build a model without a runner; checking config values."""
from numbers import Integral
from typing import Optional, Tuple

from mmengine.config import Config
from mmengine.registry import init_default_scope


def load_config(filename: str, cfg_options: Optional[dict] = None) -> Config:
    """Read ``filename`` (``Config.fromfile`` also imports its
    ``custom_imports``), merge ``cfg_options`` (``--cfg-options``) and set
    the config's default scope (``mmseg`` if unset), so that every module
    it names resolves in the registries."""
    cfg = Config.fromfile(filename)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
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
