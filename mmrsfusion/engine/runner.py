"""The runner of mmrsfusion configs: mmengine's, with the config's modality
spec handed to the model and the datasets."""
from mmengine.runner import Runner

from mmseg.registry import RUNNERS
from mmrsfusion.utils import bind_config_spec


@RUNNERS.register_module()
class MultiModalRunner(Runner):
    """mmengine's :class:`Runner` that first binds the config's top-level
    ``modalities`` (:func:`~mmrsfusion.utils.bind_config_spec`), so a
    config declares its modality spec once. Selected by ``runner_type =
    'MultiModalRunner'`` (the default runtime sets it), which mmseg's and
    our ``tools/train.py`` / ``tools/test.py`` honour."""

    @classmethod
    def from_cfg(cls, cfg) -> 'MultiModalRunner':
        return super().from_cfg(bind_config_spec(cfg))
