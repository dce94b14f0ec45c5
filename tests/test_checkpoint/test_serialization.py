"""Checkpoints load with ``torch.load(weights_only=True)`` and an allow-list.

``import mmrsfusion`` replaces mmengine's local-file checkpoint loader, so
``load_from``, ``resume`` and ``init_cfg=dict(type='Pretrained')`` accept
mmengine checkpoints on torch >= 2.6 while refusing pickles that would run
code.
"""
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel, BaseModule
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint
from torch.utils.data import Dataset

import mmrsfusion  # noqa: F401  (registers the safe local loader)
from mmrsfusion.checkpoint import (InvalidCheckpointError,
                                   UnsafeCheckpointError,
                                   load_checkpoint_safely,
                                   save_checkpoint_atomically)


class RunCode:
    """Unpickling it runs ``touch <path>``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f'touch {self.path}', )


class FetchAttr:
    """Unpickling it calls ``getattr(obj, name)``."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


def _numpy_meta():
    return dict(
        array=np.arange(6, dtype=np.float32).reshape(2, 3),
        float64=np.float64(0.8125),
        int64=np.int64(7),
        float32=np.float32(2.5),
        bool_=np.bool_(True),
        dtype=np.dtype('uint16'),
        nested=dict(best_score=np.float64(61.5), classes=('a', 'b')))


def _assert_numpy_meta(meta):
    expected = _numpy_meta()
    np.testing.assert_array_equal(meta['array'], expected['array'])
    assert meta['array'].dtype == np.float32
    for key in ('float64', 'int64', 'float32', 'bool_'):
        assert meta[key] == expected[key]
        assert type(meta[key]) is type(expected[key])
    assert meta['dtype'] == np.dtype('uint16')
    assert meta['nested'] == expected['nested']


def test_numpy_meta_checkpoint_loads(tmp_path):
    model = nn.Linear(3, 2)
    path = str(tmp_path / 'numpy_meta.pth')
    torch.save(dict(meta=_numpy_meta(), state_dict=model.state_dict()), path)

    # The trap: torch >= 2.6 refuses it by default.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)

    checkpoint = _load_checkpoint(path, map_location='cpu')
    _assert_numpy_meta(checkpoint['meta'])

    # What init_cfg=dict(type='Pretrained') and load_from go through.
    target = nn.Linear(3, 2)
    loaded = load_checkpoint(target, path, map_location='cpu')
    _assert_numpy_meta(loaded['meta'])
    for name, value in model.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], value)


def test_pretrained_init_cfg_loads_numpy_meta_checkpoint(tmp_path):
    source = nn.Linear(3, 2)
    path = str(tmp_path / 'pretrained.pth')
    state_dict = {f'linear.{k}': v for k, v in source.state_dict().items()}
    torch.save(dict(meta=_numpy_meta(), state_dict=state_dict), path)

    class Net(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Pretrained', checkpoint=path))
            self.linear = nn.Linear(3, 2)

    net = Net()
    net.init_weights()
    for name, value in source.state_dict().items():
        torch.testing.assert_close(net.linear.state_dict()[name], value)


def test_numpy1_checkpoint_loads(tmp_path):
    """Checkpoints written under numpy 1.x name ``numpy.core.multiarray``."""
    path = str(tmp_path / 'numpy2.pth')
    torch.save(dict(meta=_numpy_meta()), path)
    old = str(tmp_path / 'numpy1.pth')
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, 'w') as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith('data.pkl'):
                assert b'numpy._core.multiarray' in data
                data = data.replace(b'numpy._core.multiarray',
                                    b'numpy.core.multiarray')
            dst.writestr(info, data)

    _assert_numpy_meta(_load_checkpoint(old, map_location='cpu')['meta'])


def test_code_running_checkpoint_is_refused(tmp_path):
    sentinel = tmp_path / 'code_ran'
    path = str(tmp_path / 'malicious.pth')
    torch.save(
        dict(state_dict=nn.Linear(3, 2).state_dict(),
             meta=dict(note=RunCode(sentinel))), path)

    with pytest.raises(UnsafeCheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')
    assert not sentinel.exists()
    message = str(info.value)
    assert path in message
    assert 'system' in message  # names what it refused
    assert 'arbitrary code' in message
    assert 'trust' in message

    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(nn.Linear(3, 2), path, map_location='cpu')
    assert not sentinel.exists()

    # The file really is an exploit: unrestricted unpickling runs it.
    torch.load(path, weights_only=False)
    assert sentinel.exists()


@pytest.mark.parametrize(
    'obj, name',
    [
        (HistoryBuffer, '_set_default_statistics'),  # private
        (HistoryBuffer, '__init__'),  # a way to __globals__
        (HistoryBuffer.min, '__globals__'),  # not an allow-listed class
        (np.ndarray, 'tofile'),
    ])
def test_getattr_is_restricted(tmp_path, obj, name):
    path = str(tmp_path / 'getattr.pth')
    torch.save(dict(meta=dict(x=FetchAttr(obj, name))), path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_safely(path)


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
def test_plain_pickle_referencing_code_is_unsafe(tmp_path, protocol):
    sentinel = tmp_path / 'code_ran'
    path = str(tmp_path / 'hostile.pkl')
    with open(path, 'wb') as f:
        pickle.dump(RunCode(sentinel), f, protocol=protocol)
    with pytest.raises(UnsafeCheckpointError, match='system') as info:
        load_checkpoint_safely(path)
    assert path in str(info.value) and not sentinel.exists()


@pytest.mark.parametrize('kind', ['random', 'list', 'list2'])
def test_pickle_without_code_is_not_a_checkpoint(tmp_path, kind):
    """Bytes starting like a pickle, and plain pickles of data, are not
    checkpoints: no advice to turn weights_only off."""
    path = str(tmp_path / f'{kind}.pth')
    with open(path, 'wb') as f:
        if kind == 'random':
            f.write(b'\x80' + np.random.default_rng(0).bytes(256))
        else:
            pickle.dump([1, 'two', 3.0], f,
                        protocol=2 if kind == 'list2' else 4)
    with pytest.raises(InvalidCheckpointError) as info:
        load_checkpoint_safely(path)
    message = str(info.value)
    assert message.startswith(f'{path!r} is not a checkpoint: ')
    assert 'weights_only=False' not in message


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        _load_checkpoint(str(tmp_path / 'missing.pth'))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=(out - inputs.sum(1, keepdim=True)).pow(2).mean())
        return [dict(pred=o) for o in out]


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'), palette=[[0, 0, 0], [255, 0, 0]])

    def __len__(self):
        return 8

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(2, generator=g))


class ToyMetric(BaseMetric):
    """Returns numpy scalars, as mmseg's metrics do: they end up in the
    message hub (``best_score``) of the checkpoint."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['pred']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(score=np.float64(np.mean(results)))


def _runner(work_dir, name, max_iters, **kwargs):
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=2,
        num_workers=0,
        collate_fn=dict(type='default_collate'))
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=[ToyMetric()],
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(type='PolyLR', by_epoch=False, eta_min=1e-4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        val_cfg=dict(),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=2,
                by_epoch=False,
                save_best='score',
                rule='greater'),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        **kwargs)


def test_runner_checkpoint_resume_and_load_from(tmp_path):
    _runner(tmp_path, 'first', max_iters=4).train()
    checkpoint = str(tmp_path / 'iter_2.pth')
    with pytest.raises(pickle.UnpicklingError):  # the trap, unpatched
        torch.load(checkpoint, weights_only=True)
    saved = _load_checkpoint(checkpoint, map_location='cpu')
    assert isinstance(saved['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)

    resumed = _runner(
        tmp_path / 'resume',
        'resumed',
        max_iters=4,
        load_from=checkpoint,
        resume=True)
    resumed.train()
    assert resumed.iter == 4
    hub = resumed.message_hub
    # restored from the checkpoint (2 iterations) + 2 new ones
    assert len(hub.get_scalar('train/loss').data[0]) == 4
    assert isinstance(hub.get_info('best_score'), float)
    assert os.path.isfile(tmp_path / 'resume' / 'iter_4.pth')

    loaded = _runner(tmp_path / 'load', 'loaded', max_iters=4,
                     load_from=checkpoint)
    loaded.load_or_resume()
    for name, value in saved['state_dict'].items():
        torch.testing.assert_close(loaded.model.state_dict()[name], value)
    assert loaded.iter == 0  # load_from without resume: weights only


class _Unpicklable:
    """Fails half-way through ``torch.save``."""

    def __reduce__(self):
        raise RuntimeError('cannot pickle this')


def test_atomic_save_round_trip_and_failure(tmp_path):
    dst = tmp_path / 'sub' / 'weights.pth'
    state = {'w': torch.arange(6.).reshape(2, 3)}
    save_checkpoint_atomically(state, str(dst))  # creates the folder
    assert torch.equal(load_checkpoint_safely(str(dst))['w'], state['w'])
    # the permissions a plain torch.save would give, not mkstemp's 0600
    plain = tmp_path / 'plain.pth'
    torch.save(state, plain)
    assert dst.stat().st_mode == plain.stat().st_mode

    # A failing save keeps the previous file intact and leaves no temporary.
    with pytest.raises(RuntimeError, match='cannot pickle'):
        save_checkpoint_atomically(
            {'w': torch.zeros(1000), 'bad': _Unpicklable()}, str(dst))
    assert torch.equal(load_checkpoint_safely(str(dst))['w'], state['w'])
    assert os.listdir(dst.parent) == ['weights.pth']
