"""tools/analysis_tools/benchmark.py on the demo config at a small size: it
prints every Table III line with numbers that parse (no timing
assertions), also for a trainable-only checkpoint."""
import importlib.util
import os.path as osp
import re
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import save_checkpoint

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.engine.hooks import strip_frozen

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark.py')
DEMO = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')
PATTERNS = {
    'config': r'config: (\S+)',
    'device': r'device: (\w+) \(threads=(\d+)\)',
    'input': r'input: (\d+)x(\d+)x(\d+)x(\d+)',
    'trainable': r'trainable params: (\d+) \((\d+\.\d+)M\)',
    'latency': r'latency: (\d+\.\d+) ms/batch',
    'throughput': r'throughput: (\d+\.\d+) img/s',
    'memory': r'peak memory: (\d+) MB \(.+\)',
}


def benchmark(args, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [SCRIPT] + args)
    runpy.run_path(SCRIPT, run_name='__main__')
    out = capsys.readouterr().out
    found = {}
    for name, pattern in PATTERNS.items():
        match = re.search(f'^{pattern}$', out, re.M)
        assert match, f'no {name} line in:\n{out}'
        found[name] = match.groups()
    return found


def test_demo_config_small(capsys, monkeypatch):
    found = benchmark([
        DEMO, '--shape', '64', '48', '--batch-size', '2', '--warmup', '1',
        '--repeat', '2', '--device', 'cpu'
    ], capsys, monkeypatch)
    assert found['config'] == (DEMO, )
    assert found['device'][0] == 'cpu'
    assert found['input'] == ('2', '4', '64', '48')
    assert int(found['trainable'][0]) == 224_768  # the demo model
    assert float(found['trainable'][1]) == 0.22
    latency = float(found['latency'][0])
    throughput = float(found['throughput'][0])
    assert latency > 0 and throughput > 0
    assert abs(throughput - 2 * 1000 / latency) <= 0.1 + 0.01 * throughput
    assert int(found['memory'][0]) > 0


def _make_state_dict(**kwargs):
    spec = importlib.util.spec_from_file_location(
        'make_tiny_vit_checkpoint',
        osp.join(ROOT, 'tools', 'misc', 'make_tiny_vit_checkpoint.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_state_dict(**kwargs)


def test_trainable_only_checkpoint(tmp_path, capsys, monkeypatch):
    """--checkpoint with a checkpoint saved without the frozen ViT: the
    frozen weights are re-attached from the config's pretrained file."""
    frozen = str(tmp_path / 'tiny_pretrain.pth')
    torch.save(_make_state_dict(), frozen)  # the demo's architecture
    init_default_scope('mmseg')
    cfg = Config.fromfile(DEMO)
    cfg.model.backbone.frozen_checkpoint = frozen
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = dict(state_dict=model.state_dict(), meta={})
    strip_frozen(ckpt, model)
    assert not any(k.startswith('backbone.encoder.')
                   for k in ckpt['state_dict'])
    path = str(tmp_path / 'trainable_only.pth')
    save_checkpoint(ckpt, path)
    found = benchmark([
        DEMO, '--checkpoint', path, '--shape', '32', '32', '--warmup', '0',
        '--repeat', '1', '--device', 'cpu', '--cfg-options',
        f'model.backbone.frozen_checkpoint={frozen}'
    ], capsys, monkeypatch)
    assert int(found['trainable'][0]) == 224_768
    # loading is strict: without the pretrained file the frozen weights
    # cannot be re-attached and the benchmark refuses to run
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        benchmark([
            DEMO, '--checkpoint', path, '--shape', '32', '32', '--device',
            'cpu', '--cfg-options',
            f'model.backbone.frozen_checkpoint={tmp_path / "missing.pth"}'
        ], capsys, monkeypatch)
