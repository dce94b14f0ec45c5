"""Loading a config the way ``tools/train.py`` does, for the analysis tools
that build a model without a runner."""
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings


def load_config(filename: str, cfg_options: Optional[dict] = None) -> Config:
    """Read ``filename``, merge ``cfg_options`` (``--cfg-options``), set the
    config's default scope (``mmseg`` if unset) and import its
    ``custom_imports``, so that every module it names is registered."""
    cfg = Config.fromfile(filename)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    return cfg
