"""mmrsfusion: multimodal remote-sensing segmentation for MMSegmentation 1.x.

Importing the package registers every module into mmsegmentation's
registries (default scope ``mmseg``).
"""
from .version import __version__

# TODO(infra): version guard for mmcv, mmengine, mmseg, mmpretrain goes here,
# before the submodules below import them.

from . import datasets, engine, evaluation, models, utils  # noqa: E402,F401

__all__ = ['__version__']
