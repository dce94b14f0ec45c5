"""The training / testing tools and launchers, on CPU with a tiny config.

``tools/dist_train.sh`` starts 2 processes (torchrun, gloo); ``tools/train.py
--resume`` continues a run; ``tools/test.py CONFIG CHECKPOINT`` evaluates a
checkpoint (loaded with ``weights_only=True`` through mmrsfusion's loader).
A hook imported by the config records, per rank, what each process did.
"""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

from mmrsfusion.datasets import generate_synthetic_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Registered through the config's custom_imports: writes rank{N}.json into
# the work dir with the world size, the iterations this process trained and
# a checksum of its parameters.
RANK_MARKER = '''
import json
import os.path as osp

import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankMarkerHook(Hook):

    def before_train(self, runner):
        self.iters = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.iters.append(runner.iter + 1)

    def after_train(self, runner):
        rank, world_size = get_dist_info()
        model = runner.model.module if is_model_wrapper(runner.model) \\
            else runner.model
        checksum = sum(float(p.detach().double().sum())
                       for p in model.parameters())
        with open(osp.join(runner.work_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(dict(world_size=world_size, iters=self.iters,
                           checksum=checksum), f)
'''

CONFIG = '''
_base_ = [
    {root!r} + '/configs/_base_/datasets/synthetic_mm.py',
    {root!r} + '/configs/_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmrsfusion', 'rank_marker'], allow_failed_imports=False)
data_root = {data_root!r}
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# a tiny early-fusion model: RGB + DSM stacked into one ResNet stem
model = dict(
    type='EncoderDecoder',
    data_preprocessor={{{{_base_.data_preprocessor}}}},
    backbone=dict(
        type='ResNetV1c', depth=18, in_channels=4, num_stages=2,
        out_indices=(1, ), strides=(1, 2), dilations=(1, 1),
        norm_cfg=dict(type='BN')),
    decode_head=dict(
        type='FCNHead', in_channels=128, channels=16, num_convs=1,
        num_classes=6, norm_cfg=dict(type='BN')),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(48, 48)))
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2))
custom_hooks = [dict(type='RankMarkerHook')]
'''


@pytest.fixture
def project(tmp_path):
    """A config outside the repo, its hook module and tiny synthetic data.

    Returns:
        tuple: config path, work dir, environment for the tools.
    """
    data_root = str(tmp_path / 'data')
    generate_synthetic_dataset(
        data_root, num_train=4, num_test=2, tile_size=64,
        test_tile_size=(80, 72))
    (tmp_path / 'rank_marker.py').write_text(RANK_MARKER)
    config = tmp_path / 'tiny_early_fusion.py'
    config.write_text(CONFIG.format(root=ROOT, data_root=data_root))
    env = dict(
        os.environ,
        PYTHONPATH=str(tmp_path),
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1',
        CUDA_VISIBLE_DEVICES='')
    return str(config), str(tmp_path / 'work_dir'), env


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _run(cmd, env):
    result = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-5000:])
    return result.stdout + result.stderr


def _marker(work_dir, rank):
    with open(osp.join(work_dir, f'rank{rank}.json')) as f:
        return json.load(f)


def test_dist_train_two_cpu_processes(project):
    config, work_dir, env = project
    env['PORT'] = _free_port()
    _run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir],
         env)

    ranks = [_marker(work_dir, rank) for rank in (0, 1)]
    for marker in ranks:
        assert marker['world_size'] == 2
        assert marker['iters'] == [1, 2, 3, 4]
    # DDP kept the two replicas identical
    assert ranks[0]['checksum'] == pytest.approx(ranks[1]['checksum'])
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_4.pth')


def test_train_resume_then_test(project):
    config, work_dir, env = project
    _run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
          '--cfg-options', 'train_cfg.max_iters=2'], env)
    assert _marker(work_dir, 0)['iters'] == [1, 2]

    # --resume picks up iter_2.pth from the work dir and trains on to 4
    out = _run([sys.executable, 'tools/train.py', config, '--work-dir',
                work_dir, '--resume'], env)
    assert 'resumed' in out.lower()
    assert _marker(work_dir, 0)['iters'] == [3, 4]
    checkpoint = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(checkpoint)

    out = _run([sys.executable, 'tools/test.py', config, checkpoint,
                '--work-dir', work_dir], env)
    assert 'Loads checkpoint by local backend' in out
    assert 'mIoU' in out and 'mF1' in out
    # the metrics, dumped as json into work_dir/<timestamp>/
    dumped = []
    for path in glob.glob(osp.join(work_dir, '*', '*.json')):
        with open(path) as f:
            dumped.append(json.load(f))
    assert any('mIoU' in d and 'OA' in d for d in dumped), dumped
