"""Checks, before a loop runs, that the model and its data agree, and the
modality spec a checkpoint records."""
from typing import Optional

from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmrsfusion.checkpoint import (check_checkpoint_spec, save_checkpoint_spec,
                                   unwrap_model)
from mmrsfusion.utils import check_slide_cfg, pipeline_transforms


def check_modality_spec(model, dataset, where: str) -> None:
    """Compare the modality spec of ``dataset`` (its own, else that of
    every transform of its pipeline that has one) with the model's.

    Raises:
        ValueError: naming both sides and specs. The stacked channels carry
            no names, so a modality renamed on one side only (or reordered)
            would silently be normalised, masked and fused as another one.
    """
    expected = getattr(unwrap_model(model), 'modalities', None)
    if expected is None or dataset is None:
        return
    owners = [(where, getattr(dataset, 'modalities', None))]
    if owners[0][1] is None:
        owners = [(f'{where}.{name}', getattr(t, 'modalities', None))
                  for name, t in pipeline_transforms(dataset)]
    for name, spec in owners:
        if spec is not None:
            expected.check_same(spec, 'model.modalities',
                                f'{name}.modalities')


@HOOKS.register_module()
class ConsistencyCheckHook(Hook):
    """The model's modality spec against its data and its checkpoints.

    Before training, validation and testing, each dataloader's dataset
    must have the model's modality spec (:func:`check_modality_spec`);
    before validation and testing, a sliding-window ``model.test_cfg`` needs
    positive window and stride (:func:`~mmrsfusion.utils.check_slide_cfg`).
    Every saved checkpoint records the model's spec in its ``meta``
    (``modalities``); a loaded one (``load_from``, resume,
    ``tools/test.py``) that records another is refused
    (:func:`~mmrsfusion.utils.check_checkpoint_spec`).
    """

    def _check(self, runner, loop_name: str, where: str) -> None:
        loop = getattr(runner, loop_name, None)
        loader: Optional[object] = getattr(loop, 'dataloader', None)
        check_modality_spec(runner.model, getattr(loader, 'dataset', None),
                            where)
        if loop_name != '_train_loop':
            check_slide_cfg(
                getattr(unwrap_model(runner.model), 'test_cfg', None))

    def before_train(self, runner) -> None:
        self._check(runner, '_train_loop', 'train_dataloader.dataset')

    def before_val(self, runner) -> None:
        self._check(runner, '_val_loop', 'val_dataloader.dataset')

    def before_test(self, runner) -> None:
        self._check(runner, '_test_loop', 'test_dataloader.dataset')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        spec = getattr(unwrap_model(runner.model), 'modalities', None)
        if spec is not None:
            save_checkpoint_spec(checkpoint, spec)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        spec = getattr(unwrap_model(runner.model), 'modalities', None)
        if spec is not None:
            check_checkpoint_spec(
                checkpoint, spec, runner._load_from
                or f'(the latest checkpoint in {runner.work_dir})')
