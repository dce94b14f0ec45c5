"""tools/analysis_tools/benchmark.py on the demo config at a small size: it
prints every Table III line with numbers that parse (no timing
assertions), also for a trainable-only checkpoint."""
import importlib.util
import os.path as osp
import re
import runpy
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import save_checkpoint

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.checkpoint import strip_frozen, trainable_keys
from mmrsfusion.utils import load_config

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
    cfg = load_config(DEMO)
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


def _module():
    spec = importlib.util.spec_from_file_location('benchmark', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_amp_slide_lines(capsys, monkeypatch):
    """--train --amp --slide print their lines beside the floor; the
    batched slide gives the per-window logits (the demo's slide test_cfg:
    128 x 128 windows, stride 64)."""
    monkeypatch.setattr(sys, 'argv', [
        SCRIPT, DEMO, '--shape', '32', '32', '--batch-size', '2',
        '--warmup', '0', '--repeat', '1', '--device', 'cpu', '--train',
        '--amp', '--slide', '200', '176',
        '--batch-windows', '3'
    ])
    runpy.run_path(SCRIPT, run_name='__main__')
    out = capsys.readouterr().out
    num = r'(\d+(?:\.\d+)?)'
    for pattern in [
            rf'floor \(bare frozen encoder on all streams\): {num} ms/batch',
            rf'inference fp32: {num} ms/batch, {num}x floor',
            rf'inference bfloat16: {num} ms/batch \({num}x fp32, {num}x '
            r'floor\)',
            rf'train step fp32: {num} ms/step \(batch 2, {num}x floor\), '
            rf'peak RSS {num} MB \(\+-?{num} MB over its start, -?{num} MB '
            r'above the libraries\)',
            rf'process before the model was built: {num} MB RSS',
            rf'train step fp32: peak allocated {num} MB of tensors \({num} MB '
            r'alive before the step',
            rf'train step bfloat16: {num} ms/step \(batch 2, {num}x fp32, '
            rf'{num}x floor\), peak RSS',
            rf'slide 200x176 \(6 windows of \(128, 128\), stride \(64, 64\)\), '
            rf'1 window\(s\) per forward: {num} ms, {num}x floor',
            r'slide 200x176 .*, 3 window\(s\) per forward',
    ]:
        assert re.search(pattern, out), f'{pattern!r} not in:\n{out}'
    diff = float(re.search(r'max \|logit difference\| batched vs '
                           r'per-window (\S+)', out).group(1))
    assert diff <= 1e-5


def test_data_lines(tmp_path, capsys):
    """--data: samples/s through the Potsdam train pipeline (windows) and
    the same samples read whole, on a small converted tile; --data-vs: a
    second config's train dataset beside them and the ratio."""
    from mmrsfusion.datasets.isprs_raw.tiles import write_tiff
    rng = np.random.default_rng(0)
    for folder, arr in [
        ('img_dir', rng.integers(0, 256, (300, 280, 4)).astype(np.uint8)),
        ('dsm_dir', rng.random((300, 280)).astype(np.float32)),
        ('ann_dir', rng.integers(0, 6, (300, 280)).astype(np.uint8)),
    ]:
        (tmp_path / folder / 'train').mkdir(parents=True)
        write_tiff(str(tmp_path / folder / 'train' / '2_10.tif'), arr)
    init_default_scope('mmseg')
    base = osp.join(ROOT, 'configs', '_base_', 'datasets', 'potsdam_mm.py')
    cfg = load_config(base)
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    versus = tmp_path / 'versus.py'
    versus.write_text(f'_base_ = [{base!r}]\ntrain_dataloader = dict('
                      f'dataset=dict(data_root={str(tmp_path)!r}))\n')
    _module().bench_data(cfg, 3, str(versus))
    out = capsys.readouterr().out
    for name in ('config pipeline', 'whole tile read, then RandomCrop',
                 f'--data-vs {versus}'):
        assert re.search(
            rf'data \({re.escape(name)}\): \d+\.\d ms/sample, \d+\.\d '
            rf'samples/s, CPU \d+\.\d ms/sample \(3 samples from 1 '
            rf'item\(s\), {tmp_path}\); memory: peak RSS \+-?\d+ MB',
            out), out
    assert re.search(r'data: config pipeline / --data-vs: \d+\.\d\dx the '
                     r'wall time per sample, \d+\.\d\dx the CPU time', out)


def test_peak_tensor_memory_counts_live_tensors():
    """The profiled peak: the tensors alive before (weights, gradients,
    optimizer state) plus the most bytes alive at once during the call,
    not the sum of everything allocated."""
    bench = _module()
    model = torch.nn.Linear(512, 512)  # 1 MiB + 2 KiB
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step():
        a = torch.ones(2**20)  # 4 MiB
        b = a * 2  # 8 MiB alive here
        del a, b
        c = torch.ones(2**19)  # 2 MiB, after they are gone
        del c

    alive, peak = bench.peak_tensor_memory_mb(step, model, optimizer)
    assert alive == pytest.approx((512 * 512 + 512) * 4 / 2**20)
    assert peak - alive == pytest.approx(8., abs=0.01)
    model(torch.ones(1, 512)).sum().backward()
    optimizer.step()  # gradients and momentum now alive too
    assert bench.peak_tensor_memory_mb(lambda: None, model,
                                       optimizer) == (3 * alive, 3 * alive)


def test_scene_and_agreement_lines(tmp_path, capsys, monkeypatch):
    """--scene: windows/s of the bare forward and of predict_scene with and
    without the overlapped reader, their ratios and stage shares; with
    --amp under bfloat16; --agreement: bf16 vs fp32 argmax on the test
    set (the demo with random weights, tiny inputs)."""
    from mmrsfusion.datasets import generate_synthetic_dataset
    rasterio = pytest.importorskip('rasterio')
    from rasterio.transform import from_origin
    rng = np.random.default_rng(0)
    paths = {}
    for name, arr in (('rgb', rng.integers(0, 256, (3, 160, 144))),
                      ('dsm', rng.random((1, 160, 144)) * 50)):
        paths[name] = str(tmp_path / f'{name}.tif')
        with rasterio.open(paths[name], 'w', driver='GTiff', height=160,
                           width=144, count=len(arr), dtype='float32',
                           crs='EPSG:32632',
                           transform=from_origin(0, 0, 1, 1)) as dst:
            dst.write(arr.astype(np.float32))
    root = generate_synthetic_dataset(
        str(tmp_path / 'data'), num_train=0, num_test=1,
        test_tile_size=(64, 48))
    monkeypatch.setattr(sys, 'argv', [
        SCRIPT, DEMO, '--shape', '32', '32', '--warmup', '0', '--repeat',
        '1', '--device', 'cpu', '--amp', '--agreement', '--scene',
        *(f'{k}={v}' for k, v in paths.items()), '--block-size', '64',
        '--scene-repeat', '1', '--batch-windows', '3', '--cfg-options',
        'model.backbone.frozen_checkpoint=None',
        'model.test_cfg.crop_size=(64,64)', 'model.test_cfg.stride=(40,40)',
        f'test_dataloader.dataset.data_root={root}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ])
    runpy.run_path(SCRIPT, run_name='__main__')
    out = capsys.readouterr().out
    num = r'(\d+(?:\.\d+)?)'
    assert re.search(
        r'scene 160x144: 12 windows of \(64, 64\) stride \(40, 40\) \(\d+ '
        r'computed in 9 blocks of 64\), 3 per forward, mixed precision',
        out), out
    assert re.search(rf'scene: bare batched forward {num} windows/s', out)
    assert re.search(rf'scene: predict_scene \(overlapped\) memory: peak '
                     rf'RSS {num} MB \(\+-?{num} MB over its start\)', out)
    for name in ('overlapped', 'serial'):
        match = re.search(
            rf'predict_scene \({name} reads / writes\) {num} windows/s = '
            rf'{num}x the bare forward; stages .*: (.*)', out)
        assert match, out
        assert {'read', 'forward', 'write'} <= {
            s.split()[0] for s in match.group(3).split(', ')}
    match = re.search(rf'agreement bfloat16 vs fp32 on the test set \(1 '
                      rf'images, 3072 pixels\): {num}% .*bfloat16 {num}x '
                      r'the fp32 time', out)
    assert match, out
    assert 90 <= float(match.group(1)) <= 100


REFERENCE = '''
import torch.nn as nn


def make(in_channels, num_classes):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1),
                         nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, num_classes, 1))
'''


def test_reference_and_breakdown_lines(tmp_path, capsys, monkeypatch):
    """--reference: ours vs a model from a factory outside the repository
    (inference at batch 1 and --batch-size, training fp32 and bf16, the
    memory of each) as ratios; --breakdown: backbone vs whole forward."""
    (tmp_path / 'ref.py').write_text(REFERENCE)
    monkeypatch.setattr(sys, 'argv', [
        SCRIPT, DEMO, '--shape', '32', '32', '--batch-size', '2',
        '--warmup', '0', '--repeat', '1', '--device', 'cpu', '--amp',
        '--reference', f'{tmp_path / "ref.py"}:make', '--breakdown', '32',
        '--cfg-options', 'model.backbone.frozen_checkpoint=None'
    ])
    runpy.run_path(SCRIPT, run_name='__main__')
    out = capsys.readouterr().out
    num = r'(\d+(?:\.\d+)?)'
    assert re.search(r'reference: .*ref.py:make; trainable params ours '
                     r'224,768, theirs 366; 32x32', out), out
    for part in ('inference batch 1 fp32', 'inference batch 2 fp32',
                 'train step batch 2 fp32', 'train step batch 2 bfloat16'):
        assert re.search(rf'reference {part}: ours {num} ms, theirs {num} '
                         rf'ms, ours/theirs {num}x', out), (part, out)
        for what in ('peak of live tensors', 'peak RSS rise'):
            assert re.search(rf'reference {part} memory \({what}\): ours '
                             rf'-?{num} MB; theirs -?{num} MB', out), out
    assert re.search(rf'ours bfloat16 / theirs fp32 {num}x', out), out
    assert re.search(
        rf'breakdown 32x32 batch 2: backbone {num} ms, whole forward {num} '
        rf'ms; the rest \(neck, fusion, heads\) -?{num} ms = -?{num}% of the'
        rf' forward', out), out
    with pytest.raises(ValueError, match='PATH.py:FACTORY'):
        _module().load_factory(str(tmp_path / 'ref.py'))
    with pytest.raises(ValueError, match="no callable 'nothing'"):
        _module().load_factory(f'{tmp_path / "ref.py"}:nothing')


def test_reference_merges_lora(tmp_path, capsys):
    """--merge-lora: our inference with the q/v LoRA merged, equal to the
    unmerged logits; the frozen weights and training are untouched (a tiny
    MFNet MMLoRA)."""
    from mmseg.models.utils import resize  # noqa: F401 (mmseg registered)
    (tmp_path / 'ref.py').write_text(REFERENCE)
    init_default_scope('mmseg')
    cfg = load_config(osp.join(ROOT, 'configs', 'mfnet',
                               'sam_vitb_mmlora_vaihingen.py'))
    m = cfg.model
    m.backbone.arch = dict(embed_dims=32, num_layers=2, num_heads=2,
                           feedforward_channels=64, global_attn_indexes=[1])
    m.backbone.out_indices = [1]
    m.backbone.encoder_cfg = dict(img_size=64, window_size=4,
                                  out_channels=32)
    m.backbone.frozen_checkpoint = None
    m.neck.in_channels = 32
    m.decode_head.in_channels = [32] * 4
    m.decode_head.channels = 16
    m.decode_head.num_heads = 2
    m.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    model = MODELS.build(m)
    model.init_weights()
    for name, p in model.named_parameters():
        if 'lora_b' in name:  # B starts at zero: make the merge matter
            torch.nn.init.normal_(p, std=0.5)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    bench = _module()
    bench.bench_reference(cfg, model, f'{tmp_path / "ref.py"}:make',
                          (160, 160), 2, False, True,
                          dict(warmup=0, repeat=1,
                               device=torch.device('cpu')))
    out = capsys.readouterr().out
    match = re.search(r'reference inference batch 2 fp32: .*; LoRA merged '
                      r'\d+ ms = [\d.]+x unmerged, [\d.]+x theirs, max '
                      r'\|logit difference\| (\S+)', out)
    assert match, out
    assert float(match.group(1)) <= 1e-4
    # the merge was on a copy: ours unmerged, frozen weights as they were
    # until the training step (which changes only trainable tensors)
    assert not any(getattr(mod, 'merged', False) for mod in model.modules())
    trainable = set(trainable_keys(model))  # state-dict keys
    assert any(k.endswith('qkv.lora_a') for k in trainable)
    for key, value in model.state_dict().items():
        if key not in trainable:
            assert torch.equal(value, frozen[key]), key


def test_window_read_lines(tmp_path, capsys):
    """--window-read: the windowed loader's reads and whole-file reads give
    the same values from a tiled and a striped file."""
    import rasterio
    from mmrsfusion.datasets.isprs_raw.tiles import write_tiff
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (300, 280, 3)).astype(np.uint8)
    tiled, striped = str(tmp_path / 'tiled.tif'), str(tmp_path / 'st.tif')
    write_tiff(tiled, arr)
    with rasterio.open(striped, 'w', driver='GTiff', height=300, width=280,
                       count=3, dtype='uint8', compress='deflate') as dst:
        dst.write(arr.transpose(2, 0, 1))
    _module().bench_window_read([tiled, striped], (64, 48), 3)
    out = capsys.readouterr().out
    assert re.search(r'window read 64x48 from tiled.tif \(300x280x3 uint8, '
                     r'tiled, .*windowed [\d.]+ ms, whole file [\d.]+ ms = '
                     r'[\d.]+x the whole read \(3 windows, median; values '
                     r'identical\)', out), out
    assert re.search(r'from st.tif \(300x280x3 uint8, striped.*'
                     r'values identical', out), out
    assert re.search(r'one sample \(2 files\): windowed [\d.]+ ms, whole '
                     r'files [\d.]+ ms = [\d.]+x the whole reads', out), out


def test_no_floor_without_shared_frozen_encoder():
    """SGMA's backbone has per-stream ``encoder``s but no shared frozen
    encoder (no ``num_modalities``): no floor, instead of an error."""
    from types import SimpleNamespace
    sgma_like = SimpleNamespace(backbone=SimpleNamespace(
        encoder=torch.nn.Identity()))
    assert _module().floor_fn(sgma_like, 1, (32, 32), 'cpu') is None
