"""The runner of mmrsfusion configs: mmengine's, with the config's modality
spec handed to the model and the datasets, the schedule following a changed
``train_cfg.max_iters`` and a short optimizer log."""
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmseg.registry import RUNNERS
from mmrsfusion.utils import bind_config_spec
from .schedule_length import follow_max_iters


@RUNNERS.register_module()
class MultiModalRunner(Runner):
    """mmengine's :class:`Runner` that first binds the config's top-level
    ``modalities`` (:func:`~mmrsfusion.utils.bind_config_spec`), so a
    config declares its modality spec once. Selected by ``runner_type =
    'MultiModalRunner'`` (the default runtime sets it), which mmseg's and
    our ``tools/train.py`` / ``tools/test.py`` honour.

    Besides, a ``train_cfg.max_iters`` changed from the config's top-level
    ``max_iters`` rescales the schedule written for it
    (:func:`~mmrsfusion.engine.schedule_length.follow_max_iters`), and an
    ``optim_wrapper`` without a ``constructor`` is built by
    :class:`~mmrsfusion.engine.optimizers.SummaryOptimWrapperConstructor`
    (one line on frozen parameters and one table of option overrides in
    place of a line per tensor)."""

    @classmethod
    def from_cfg(cls, cfg) -> 'MultiModalRunner':
        cfg = bind_config_spec(cfg)
        followed = follow_max_iters(cfg)
        runner = super().from_cfg(cfg)
        if followed:
            print_log(followed, logger='current')
        return runner

    def build_optim_wrapper(self, optim_wrapper):
        # one optimizer (not a dict of them) built by the default
        if isinstance(optim_wrapper, dict) and 'optimizer' in optim_wrapper \
                and 'constructor' not in optim_wrapper:
            optim_wrapper = dict(
                optim_wrapper, constructor='SummaryOptimWrapperConstructor')
        return super().build_optim_wrapper(optim_wrapper)
