"""Checks, before a loop runs, that the model and its data agree."""
from typing import Optional

from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmrsfusion.checkpoint import unwrap_model
from mmrsfusion.utils import check_slide_cfg, pipeline_transforms


def _spec(modalities) -> str:
    return '[' + ', '.join(f'{m.name}:{m.channels} {m.kind}'
                           for m in modalities) + ']'


def check_modality_spec(model, dataset, where: str) -> None:
    """Compare the modality spec of every
    :class:`~mmrsfusion.datasets.transforms.LoadMultiModalImageFromFiles` of
    ``dataset``'s pipeline with the model's (``model.modalities``, else its
    data preprocessor's: names, channels, kinds, in order).

    Raises:
        ValueError: naming both config fields and specs. The stacked
            channels carry no names, so a modality renamed on one side only
            (or reordered) would silently be normalised, masked, dropped
            and given auxiliary heads as another one.
    """
    model = unwrap_model(model)
    expected = getattr(model, 'modalities', None) or getattr(
        getattr(model, 'data_preprocessor', None), 'modalities', None)
    if expected is None or dataset is None:
        return
    for name, transform in pipeline_transforms(dataset):
        loaded = getattr(transform, 'modalities', None)
        if type(transform).__name__ != 'LoadMultiModalImageFromFiles' or \
                loaded is None:
            continue
        if [tuple(m) for m in loaded] != [tuple(m) for m in expected]:
            raise ValueError(
                f'{where}.{name} (LoadMultiModalImageFromFiles) loads the '
                f'modalities {_spec(loaded)} but the model '
                f'(model.data_preprocessor.modalities) was built for '
                f'{_spec(expected)}: give both the same modality spec '
                '(names, channels, kinds, order)')


@HOOKS.register_module()
class ConsistencyCheckHook(Hook):
    """Before training, validation and testing, check that each
    dataloader's pipeline loads the modalities the model expects
    (:func:`check_modality_spec`); before validation and testing, that a
    sliding-window ``model.test_cfg`` has positive window and stride (any
    segmentor; :func:`~mmrsfusion.utils.check_slide_cfg`)."""

    def _check(self, runner, loop_name: str, where: str) -> None:
        loop = getattr(runner, loop_name, None)
        loader: Optional[object] = getattr(loop, 'dataloader', None)
        check_modality_spec(runner.model, getattr(loader, 'dataset', None),
                            where)
        if loop_name != '_train_loop':
            check_slide_cfg(
                getattr(unwrap_model(runner.model), 'test_cfg', None))

    def before_train(self, runner) -> None:
        self._check(runner, '_train_loop', 'train_dataloader')

    def before_val(self, runner) -> None:
        self._check(runner, '_val_loop', 'val_dataloader')

    def before_test(self, runner) -> None:
        self._check(runner, '_test_loop', 'test_dataloader')
