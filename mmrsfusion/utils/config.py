"""Loading a config the way ``tools/train.py`` does, for the analysis tools
that build a model without a runner."""
from typing import Optional

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
