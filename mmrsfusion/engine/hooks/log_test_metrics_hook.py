"""Test metrics written to the visualizer's backends (TensorBoard, ...)."""
from numbers import Number
from typing import Dict, Optional

from mmengine.hooks import Hook

from mmseg.registry import HOOKS


@HOOKS.register_module()
class LogTestMetricsHook(Hook):
    """Writes a test run's scalar metrics to every backend of the runner's
    visualizer as ``test/<metric>`` at the checkpoint's iteration.

    mmengine's :class:`LoggerHook` writes validation metrics to the
    backends but test metrics only to the log and its JSON; with this hook
    a test run shows up in TensorBoard (``TensorboardVisBackend``) too.
    """

    priority = 'BELOW_NORMAL'

    def after_test_epoch(self, runner,
                         metrics: Optional[Dict[str, float]] = None) -> None:
        scalars = {f'test/{key}': float(value)
                   for key, value in (metrics or {}).items()
                   if isinstance(value, Number)}
        if scalars:
            runner.visualizer.add_scalars(scalars, step=runner.iter)
