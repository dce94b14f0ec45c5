"""A test run reports tiles done with an ETA (ProgressHook) and writes its
metrics to the visualizer's backends (LogTestMetricsHook): with
TensorboardVisBackend, an event file holding ``test/mIoU``."""
import glob
import itertools
import os.path as osp
import re

import pytest
import torch
from mmengine.runner import Runner

from mmseg.registry import MODELS
from mmrsfusion.datasets import generate_synthetic_dataset
from mmrsfusion.utils import load_config, progress as progress_module

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SGMA = osp.join(ROOT, 'configs', 'sgma', 'demo_r18_synthetic_rdn.py')


def sgma_test_run(tmp_path, **extra):
    """The SGMA demo's test loop on 3 small synthetic tiles, random
    weights."""
    root = generate_synthetic_dataset(
        str(tmp_path / 'data'), num_train=0, num_test=3,
        test_tile_size=(64, 48), nir=True)
    opts = {
        'test_dataloader.dataset.data_root': root,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'model.test_cfg.mode': 'whole',
        **extra
    }
    cfg = load_config(SGMA, opts)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'sgma.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = ckpt
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None
    return Runner.from_cfg(cfg).test()


def test_tiles_progress(tmp_path, capsys, monkeypatch):
    ticks = itertools.count(step=10)  # each clock reading 10 s later
    monkeypatch.setattr(progress_module, 'clock', lambda: float(next(ticks)))
    sgma_test_run(tmp_path)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith('tiles ')]
    assert [line.split(' (')[0] for line in lines] == [
        'tiles 1/3', 'tiles 2/3', 'tiles 3/3'], lines
    assert all(re.search(r', ETA \d+ s$', line) for line in lines[:2])


def test_test_metrics_in_tensorboard(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    metrics = sgma_test_run(
        tmp_path, **{
            # a new visualizer (an existing name is reused as it is)
            'visualizer.name': f'tensorboard_{tmp_path.name}',
            'visualizer.vis_backends': [dict(type='LocalVisBackend'),
                                        dict(type='TensorboardVisBackend')]
        })
    events = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' /
                           'events.out.tfevents.*'))
    assert len(events) == 1, events
    acc = EventAccumulator(events[0])
    acc.Reload()
    assert 'test/mIoU' in acc.Tags()['scalars']
    assert acc.Scalars('test/mIoU')[0].value == pytest.approx(
        metrics['mIoU'])
