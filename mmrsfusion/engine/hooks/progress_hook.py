"""Tiles done and an ETA during validation and testing."""
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmrsfusion.utils import Progress


@HOOKS.register_module()
class ProgressHook(Hook):
    """Reports ``tiles done/total`` with an ETA while a validation or test
    loop runs (:class:`~mmrsfusion.utils.Progress`: a line every 10 s when
    the output is a file or a pipe, one line redrawn in a terminal; a loop
    shorter than that prints nothing). The sliding-window segmentors report
    the windows of a long tile the same way. Main process only.

    Args:
        interval (float, optional): Seconds between lines; defaults to
            :class:`Progress`'s.
    """

    priority = 'LOW'

    def __init__(self, interval: Optional[float] = None):
        self.interval = interval
        self.progress = None

    def _start(self, loader) -> None:
        if is_main_process():
            sampler = getattr(loader, 'sampler', None)
            total = len(sampler if sampler is not None else loader.dataset)
            self.progress = Progress(total, 'tiles', interval=self.interval)

    def _step(self, data_batch) -> None:
        if self.progress is not None:
            samples: Sequence = (data_batch or {}).get('data_samples', [])
            self.progress.update(len(samples) or 1)

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner.val_loop.dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._step(data_batch)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._stop()

    def before_test_epoch(self, runner) -> None:
        self._start(runner.test_loop.dataloader)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._step(data_batch)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._stop()
