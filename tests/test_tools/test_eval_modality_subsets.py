"""tools/analysis_tools/eval_modality_subsets.py: every non-empty subset in
one pass over the test set; each row equals what tools/test.py gives with
the other modalities dropped; works for SGMA and for a plain mmseg model."""
import json
import os
import os.path as osp
import runpy

import pytest
import torch
from mmengine.runner import Runner

from mmseg.registry import MODELS
from mmrsfusion.datasets import generate_synthetic_dataset
from mmrsfusion.datasets.transforms import LoadMultiModalImageFromFiles
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = runpy.run_path(
    osp.join(ROOT, 'tools', 'analysis_tools', 'eval_modality_subsets.py'))
SGMA = osp.join(ROOT, 'configs', 'sgma', 'demo_r18_synthetic_rdn.py')
EARLY = osp.join(ROOT, 'configs', 'baselines',
                 'early_fusion_r18_synthetic.py')
MOBANET = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')


def options(data_root):
    return {
        'test_dataloader.dataset.data_root': data_root,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'model.test_cfg.mode': 'whole',
        'model.decode_head.norm_cfg.type': 'BN',
        'model.auxiliary_head': None,
    }


def checkpoint(config, opts, path):
    cfg = load_config(config, opts)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def cli_options(opts):
    return [f'{k}={v}' for k, v in opts.items()]


def tools_test(config, ckpt, opts, work_dir, amp=False):
    """What tools/test.py CONFIG CKPT [--amp] --cfg-options ... computes."""
    cfg = load_config(config, opts)
    cfg.work_dir = work_dir
    cfg.load_from = ckpt
    if amp:
        cfg.test_cfg.fp16 = True  # what tools/test.py --amp sets
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg[key] = None
    return Runner.from_cfg(cfg).test()


@pytest.fixture(scope='module')
def rdn_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'rdn'
    return generate_synthetic_dataset(
        str(root), num_train=0, num_test=2, test_tile_size=(64, 48), nir=True)


def run_tool(config, ckpt, opts, tmp_path, monkeypatch, extra=()):
    calls = []
    original = LoadMultiModalImageFromFiles.transform

    def counting(self, results):
        calls.append(results['img_path'])
        return original(self, results)

    monkeypatch.setattr(LoadMultiModalImageFromFiles, 'transform', counting)
    out = str(tmp_path / 'subsets.json')
    args = [config, ckpt, '--work-dir', str(tmp_path / 'wd'), '--out', out,
            *extra, '--cfg-options'] + cli_options(opts)
    result = TOOL['main'](args)
    monkeypatch.setattr(LoadMultiModalImageFromFiles, 'transform', original)
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(result))
    return result, calls


def test_sgma_every_subset_once(rdn_root, tmp_path, monkeypatch, capsys):
    opts = options(rdn_root)
    ckpt = checkpoint(SGMA, opts, str(tmp_path / 'sgma.pth'))
    result, calls = run_tool(SGMA, ckpt, opts, tmp_path, monkeypatch)
    assert len(calls) == 2  # each test tile read once, for all 7 subsets
    rows = result['subsets']
    assert list(rows) == ['rgb+dsm+nir', 'rgb+dsm', 'rgb+nir', 'dsm+nir',
                          'rgb', 'dsm', 'nir']
    for col in ('mIoU', 'mF1', 'OA'):
        values = [r[col] for r in rows.values()]
        assert result['Average'][col] == pytest.approx(
            sum(values) / len(values))
    # Top-1 / Last-1: the whole row of the best / worst mIoU, named
    miou = {name: row['mIoU'] for name, row in rows.items()}
    best, worst = max(miou, key=miou.get), min(miou, key=miou.get)
    assert result['Top-1'] == dict(rows[best], subset=best)
    assert result['Last-1'] == dict(rows[worst], subset=worst)
    out = capsys.readouterr().out
    assert f'Top-1 ({best})' in out and f'Last-1 ({worst})' in out
    # each per-class table comes after the name of its subset
    titles = [line.split('subset ', 1)[1].rstrip(':')
              for line in out.splitlines()
              if line.rstrip().endswith(':') and ' - subset ' in line]
    assert titles == list(rows)
    for name in rows:
        after = out.split(f'subset {name}:', 1)[1]
        assert after.index('per class results') < after.index('+--')
    # a subset's row is what tools/test.py gives with the rest dropped
    for subset, drop in (('rgb+dsm+nir', []), ('rgb+nir', ['dsm']),
                         ('dsm', ['rgb', 'nir'])):
        ref = tools_test(SGMA, ckpt,
                         dict(opts, **{'model.absent': drop}),
                         str(tmp_path / f'ref_{subset}'))
        assert rows[subset]['mIoU'] == pytest.approx(ref['mIoU'], abs=1e-6)
        assert rows[subset]['OA'] == pytest.approx(ref['OA'], abs=1e-6)


@pytest.mark.parametrize('config,extra', [
    (EARLY, {}),
    (MOBANET, {'model.backbone.frozen_checkpoint': None}),
])
def test_other_models_get_zeroed_channels(config, extra, tmp_path,
                                          monkeypatch):
    """The early-fusion baseline (mmseg's EncoderDecoder) and the MoBaNet
    demo: absent modalities are zeroed channels; the full subset is what
    tools/test.py gives, and RGB alone is MoBaNet's Table V setting
    (tools/test.py with model.absent=['dsm'])."""
    root = generate_synthetic_dataset(
        str(tmp_path / 'rd'), num_train=0, num_test=2,
        test_tile_size=(64, 48))
    opts = dict(options(root), **extra)
    ckpt = checkpoint(config, opts, str(tmp_path / 'model.pth'))
    result, calls = run_tool(config, ckpt, opts, tmp_path, monkeypatch)
    assert len(calls) == 2
    rows = result['subsets']
    assert list(rows) == ['rgb+dsm', 'rgb', 'dsm']
    ref = tools_test(config, ckpt, opts, str(tmp_path / 'ref'))
    assert rows['rgb+dsm']['mIoU'] == pytest.approx(ref['mIoU'], abs=1e-6)
    assert rows['rgb'] != rows['rgb+dsm']
    if config == MOBANET:
        ref = tools_test(config, ckpt,
                         dict(opts, **{'model.absent': ['dsm']}),
                         str(tmp_path / 'ref_rgb'))
        assert rows['rgb']['mIoU'] == pytest.approx(ref['mIoU'], abs=1e-6)


def test_amp_runs_in_bfloat16_and_agrees(tmp_path, monkeypatch):
    """--amp of this tool and of tools/test.py on the MoBaNet demo (random
    weights): the segmentor predicts under CPU autocast (bfloat16), the
    full subset's row equals tools/test.py --amp, and both stay within
    1 mIoU point of float32."""
    from mmrsfusion.models.segmentors import MultiModalEncoderDecoder
    root = generate_synthetic_dataset(
        str(tmp_path / 'rd'), num_train=0, num_test=2,
        test_tile_size=(64, 48))
    opts = dict(options(root), **{'model.backbone.frozen_checkpoint': None})
    ckpt = checkpoint(MOBANET, opts, str(tmp_path / 'model.pth'))
    modes = []
    original = MultiModalEncoderDecoder.encode_decode

    def recording(self, *args, **kwargs):
        modes.append(torch.is_autocast_cpu_enabled() and
                     torch.get_autocast_cpu_dtype() == torch.bfloat16)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MultiModalEncoderDecoder, 'encode_decode', recording)
    result, _ = run_tool(MOBANET, ckpt, opts, tmp_path, monkeypatch,
                         ['--amp'])
    assert modes and all(modes)
    modes.clear()
    ref = tools_test(MOBANET, ckpt, opts, str(tmp_path / 'ref'), amp=True)
    assert modes and all(modes)
    full = result['subsets']['rgb+dsm']
    assert full['mIoU'] == pytest.approx(ref['mIoU'], abs=1e-6)
    fp32 = tools_test(MOBANET, ckpt, opts, str(tmp_path / 'fp32'))
    assert abs(full['mIoU'] - fp32['mIoU']) <= 1.0
    assert abs(full['OA'] - fp32['OA']) <= 1.0


def test_tiles_lacking_a_modality_are_skipped_per_subset(
        tmp_path, monkeypatch, capsys):
    """Under ``allow_missing``, a tile without NIR is skipped (and named)
    only for the subsets it has no modality of; the rest is evaluated."""
    root = generate_synthetic_dataset(
        str(tmp_path / 'rdn'), num_train=0, num_test=2,
        test_tile_size=(64, 48), nir=True)
    nir_dir = osp.join(root, 'nir_dir', 'test')
    lost = sorted(os.listdir(nir_dir))[1]
    os.remove(osp.join(nir_dir, lost))
    opts = dict(options(root),
                **{'test_dataloader.dataset.allow_missing': ['nir_path']})
    ckpt = checkpoint(SGMA, opts, str(tmp_path / 'sgma.pth'))
    result, _ = run_tool(SGMA, ckpt, opts, tmp_path, monkeypatch)
    assert len(result['subsets']) == 7
    assert list(result['skipped']) == ['nir']
    assert [osp.splitext(osp.basename(p))[0]
            for p in result['skipped']['nir']] == [osp.splitext(lost)[0]]
    assert 'nir: skipped 1 tile(s) without any of its modalities' in \
        capsys.readouterr().out


def test_model_of_another_spec_refused(rdn_root, tmp_path):
    """A model built for ``lidar`` on data loading ``nir``: refused, named
    (the check tools/test.py makes); an existing --out needs --overwrite."""
    import subprocess
    import sys
    opts = options(rdn_root)
    ckpt = checkpoint(SGMA, opts, str(tmp_path / 'sgma.pth'))
    tool = osp.join(ROOT, 'tools', 'analysis_tools',
                    'eval_modality_subsets.py')
    cmd = [sys.executable, tool, SGMA, ckpt, '--work-dir',
           str(tmp_path / 'wd'), '--cfg-options'] + cli_options(opts) + [
               'model.modalities.2.name=lidar']
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert 'lidar' in proc.stderr.strip().splitlines()[-1]
    out = tmp_path / 'exists.json'
    out.write_text('{}')
    with pytest.raises(ValueError, match='--out .*exists.json exists; pass '
                       '--overwrite'):
        TOOL['main']([SGMA, ckpt, '--out', str(out), '--cfg-options'] +
                     cli_options(opts))
    assert out.read_text() == '{}'


def test_four_modalities_fifteen_subsets(tmp_path, monkeypatch, capsys):
    """DELIVER's count on the 4-modality synthetic data (the generator's
    --deliver), a tiny random-weight SGMA: 15 rows, Average / Top-1 /
    Last-1 printed."""
    config = osp.join(ROOT, 'configs', 'sgma', 'demo_r18_synthetic_rdel.py')
    root = generate_synthetic_dataset(
        str(tmp_path / 'rdel'), num_train=0, num_test=1,
        test_tile_size=(48, 40), deliver=True)
    opts = options(root)
    ckpt = checkpoint(config, opts, str(tmp_path / 'sgma4.pth'))
    result, calls = run_tool(config, ckpt, opts, tmp_path, monkeypatch)
    assert len(calls) == 1
    rows = result['subsets']
    assert len(rows) == 15
    assert list(rows)[0] == 'rgb+dsm+event+lidar'
    assert list(rows)[-4:] == ['rgb', 'dsm', 'event', 'lidar']
    out = capsys.readouterr().out
    for word in ('Average', 'Top-1', 'Last-1'):
        assert word in out
    assert sum(name in out for name in rows) == 15
    print(out)
