"""RandomStateHook: ``--resume`` from a checkpoint in the middle of a run
gives, on the CPU, the losses and weights of the uninterrupted run, bit for
bit, with every source of randomness of the MoBaNet recipe on (random crop
and flips in the pipeline, MCRM batch masking, dropout in the heads)."""
import random

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from test_trainable_checkpoint_hook import assets, demo_cfg  # noqa: F401

from mmrsfusion.engine.hooks import (capture_random_states,
                                     restore_random_states)
from mmrsfusion.engine.hooks.random_state_hook import STATE_KEY
from mmrsfusion.models.batch_augments import MCRM

MODALITIES = [dict(name='rgb', channels=3, kind='optical'),
              dict(name='dsm', channels=1, kind='elevation')]


def _losses(runner):
    return runner.message_hub.get_scalar('train/loss').data[0].tolist()


def _run(assets, work_dir, name, resume_from=None, mcrm_seed=None,
         workers=0):
    options = {'default_hooks.checkpoint.interval': 3,
               'default_hooks.checkpoint.max_keep_ckpts': -1,
               'train_dataloader.num_workers': workers,
               'train_dataloader.persistent_workers': workers > 0}
    if mcrm_seed is not None:
        options['model.data_preprocessor.batch_augments.0.seed'] = mcrm_seed
    cfg = demo_cfg(assets, work_dir, name, max_iters=6, **options)
    if resume_from is not None:
        cfg.load_from, cfg.resume = resume_from, True
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('mcrm_seed,workers', [(None, 0), (5, 0), (None, 2)])
def test_resume_is_bit_exact(assets, tmp_path, mcrm_seed, workers):
    """Run 6 iterations; resume its iteration-3 checkpoint in a new work
    dir: iterations 4-6 give the same losses and the same final weights.
    ``mcrm_seed``: MCRM draws from the global torch generator or from a
    private seeded one. ``workers``: the pipeline runs in the main process
    or in worker processes."""
    full = _run(assets, tmp_path / 'full', f'full{mcrm_seed}{workers}',
                mcrm_seed=mcrm_seed, workers=workers)
    if mcrm_seed is not None:
        mcrm = full.model.data_preprocessor.batch_augments[0]
        assert isinstance(mcrm, MCRM) and mcrm.generator is not None
    middle = str(tmp_path / 'full' / 'iter_3.pth')
    assert STATE_KEY in _load_checkpoint(middle, map_location='cpu')
    resumed = _run(assets, tmp_path / 'resumed',
                   f'resumed{mcrm_seed}{workers}', resume_from=middle,
                   mcrm_seed=mcrm_seed, workers=workers)
    assert resumed.iter == 6
    losses, resumed_losses = _losses(full), _losses(resumed)
    assert len(losses) == 6 and len(set(losses)) == 6
    assert resumed_losses == losses  # exact, all six (3 from the history)
    state = resumed.model.state_dict()
    for key, value in full.model.state_dict().items():
        assert torch.equal(state[key], value), key


def test_capture_and_restore_every_stream():
    mcrm = MCRM(MODALITIES, ratio=1., seed=3)
    model = torch.nn.Sequential(mcrm)

    def draw():
        return (random.random(), float(np.random.rand()),
                float(torch.rand(())), float(torch.rand(
                    (), generator=mcrm.generator)))

    states = capture_random_states(model)
    assert set(states['generators']) == {'model.0.generator'}
    first = draw()
    assert draw() != first
    assert restore_random_states(states, model) == []
    assert draw() == first
