"""mmrsfusion: multimodal remote-sensing segmentation for MMSegmentation 1.x.

Importing the package registers every module into mmsegmentation's
registries (default scope ``mmseg``) and lets mmengine's ``Config`` read
``_base_ = 'mmrsfusion::<method>/<config>.py'``.
"""
from .version import __version__, check_dependencies, check_mmcv_ops

# Fail early, with what was found and how to fix it, before the submodules
# below import mmcv / mmengine / mmseg / mmpretrain.
check_dependencies()
check_mmcv_ops()

from . import (checkpoint, datasets, engine, evaluation,  # noqa: E402,F401
               models, utils, visualization)

utils.register_config_scope()

__all__ = ['__version__']
