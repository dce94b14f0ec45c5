"""Random states in checkpoints, for a ``--resume`` that continues exactly
where the interrupted run was."""
import random
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.hooks import Hook

from mmseg.registry import HOOKS
from mmrsfusion.utils import pipeline_transforms

#: Top-level checkpoint key holding the states.
STATE_KEY = 'random_states'
#: Types of the generators an object may own (model modules, transforms).
_GENERATORS = (torch.Generator, np.random.Generator, np.random.RandomState,
               random.Random)


def _get_state(gen):
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    if isinstance(gen, np.random.Generator):
        return gen.bit_generator.state
    return gen.get_state() if isinstance(gen, np.random.RandomState) \
        else gen.getstate()


def _set_state(gen, state) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    elif isinstance(gen, np.random.Generator):
        gen.bit_generator.state = state
    elif isinstance(gen, np.random.RandomState):
        gen.set_state(state)
    else:
        gen.setstate(state)


def owned_generators(model: nn.Module,
                     dataset=None) -> Dict[str, object]:
    """The private random generators (torch / numpy / python) held as
    attributes by the model's modules (e.g. a seeded
    :class:`~mmrsfusion.models.batch_augments.MCRM`) and by the transforms
    of ``dataset``'s pipeline, by a stable name."""
    found = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, _GENERATORS):
                found[f'model.{name}.{attr}'.replace('..', '.')] = value
    if dataset is not None:
        for name, transform in pipeline_transforms(dataset):
            for attr, value in getattr(transform, '__dict__', {}).items():
                if isinstance(value, _GENERATORS):
                    found[f'{name}.{attr}'] = value
    return found


def capture_random_states(model: nn.Module, dataset=None) -> dict:
    """The global random states (python, numpy, torch, CUDA when
    initialised) and those of :func:`owned_generators`."""
    states = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state(),
        generators={
            name: _get_state(gen)
            for name, gen in owned_generators(model, dataset).items()
        })
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict, model: nn.Module,
                          dataset=None) -> List[str]:
    """Inverse of :func:`capture_random_states`.

    Returns:
        list[str]: Generators of the checkpoint that the model / pipeline
        no longer has, and the reverse (not restored).
    """
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])
    owned = owned_generators(model, dataset)
    saved = states.get('generators', {})
    for name in owned.keys() & saved.keys():
        _set_state(owned[name], saved[name])
    return sorted(owned.keys() ^ saved.keys())


class _RestoreAfterReplay:
    """The train loop's data iterator, which calls ``restore`` once the
    ``replay`` batches an :class:`~mmengine.runner.IterBasedTrainLoop`
    draws again on resuming (to reach the same data position) have been
    drawn, just before the first new batch, and then puts the plain
    iterator back."""

    def __init__(self, loop, replay: int, restore: Callable[[], None]):
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._replay = replay
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._replay == 0:
            self._restore()
            self._loop.dataloader_iterator = self._iterator
        self._replay -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random states in every checkpoint; restore them on resume,
    so that a resumed run draws the same random numbers as the
    uninterrupted one (on the CPU: the same losses and weights, bit for
    bit).

    Saved under ``checkpoint['random_states']`` (see
    :func:`capture_random_states`): python ``random``, ``numpy.random``,
    torch's CPU generator, the CUDA generators (when initialised), and every
    private generator held by a model module (e.g. ``MCRM(seed=...)``) or a
    transform of the training pipeline.

    On resume (the checkpoint's iteration equals the runner's: not for
    ``load_from``), the states are restored just before the first new
    batch is drawn: after the batches that the iteration-based loop draws
    again to reach the data position (in the main process these consume
    random numbers of their own), so every later draw -- data transforms,
    dropout, MCRM -- matches. Worker processes re-seed themselves from the
    runner's seed and replay the same batches, so their streams match too.

    Validation draws nothing from the training streams: the states are
    saved before it and put back after it (a checkpoint saved during
    validation, e.g. the best one, holds the states from before it).

    Checkpoints without the states resume as before, with a warning.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._before_val: Optional[dict] = None
        self._pending: Optional[dict] = None

    @staticmethod
    def _dataset(runner):
        loop = getattr(runner, '_train_loop', None)
        loader = getattr(loop, 'dataloader', None)
        return getattr(loader, 'dataset', None)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._before_val or capture_random_states(
            runner.model, self._dataset(runner))
        # the iteration a resumed run starts from (as the runner records it)
        checkpoint[STATE_KEY] = dict(
            states, iter=checkpoint.get('meta', {}).get('iter'))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get(STATE_KEY)
        if self._pending is None and checkpoint.get('meta', {}).get('iter'):
            runner.logger.warning(
                'RandomStateHook: the checkpoint holds no random states; '
                'if it is resumed, the run continues with other random '
                'numbers than an uninterrupted one would')

    def before_train(self, runner) -> None:
        states, self._pending = self._pending, None
        if states is None or states['iter'] != runner.iter:
            return  # load_from (fine-tuning) starts its own streams

        def restore():
            stale = restore_random_states(states, runner.model,
                                          self._dataset(runner))
            if stale:
                runner.logger.warning(
                    'RandomStateHook: generators not restored (in the '
                    f'checkpoint or the model/pipeline only): {stale}')

        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _RestoreAfterReplay(
                loop, runner.iter, restore)
        else:  # epoch-based: nothing is replayed
            restore()

    def before_val(self, runner) -> None:
        self._before_val = capture_random_states(runner.model,
                                                 self._dataset(runner))

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_random_states(self._before_val, runner.model,
                                  self._dataset(runner))
            self._before_val = None
