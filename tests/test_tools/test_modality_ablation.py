"""tools/analysis_tools/modality_ablation.py: the runs it defines build the
intended models, schedules are rescaled, and a short run works from any
folder (train / test run in the repository, paths stay absolute)."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.datasets.synthetic import generate_synthetic_dataset
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'modality_ablation.py')
TINY_VIT = osp.join(ROOT, 'tools', 'misc', 'make_tiny_vit_checkpoint.py')
DEMO = 'configs/mobanet/demo_tinyvit_synthetic.py'

spec = importlib.util.spec_from_file_location('modality_ablation', SCRIPT)
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


def build_run(options):
    init_default_scope('mmseg')
    cfg = load_config(osp.join(ROOT, DEMO))
    cfg.merge_from_dict(options)
    return MODELS.build(cfg.model)


def test_runs_build_the_intended_models():
    runs = ablation.ablation_runs(['rgb', 'dsm'])
    assert list(runs) == ['fused', 'no_mcrm', 'rgb_only', 'dsm_only']

    fused = build_run(runs['fused'])
    assert [type(a).__name__ for a in fused.data_preprocessor.batch_augments
            ] == ['MCRM']
    assert set(fused.auxiliary_head) == {'rgb', 'dsm'}
    assert not fused.absent

    # "without MCRM" = no masking, no aux heads, no hard-pixel loss
    no_mcrm = build_run(runs['no_mcrm'])
    assert len(no_mcrm.data_preprocessor.batch_augments) == 0
    assert not no_mcrm.with_auxiliary_head
    n_fused = sum(p.numel() for p in fused.parameters() if p.requires_grad)
    n_plain = sum(p.numel() for p in no_mcrm.parameters() if p.requires_grad)
    assert n_plain < n_fused

    rgb_only = build_run(runs['rgb_only'])
    assert rgb_only.absent == ('dsm', )
    assert rgb_only.absent_in_training
    assert len(rgb_only.data_preprocessor.batch_augments) == 0
    assert set(rgb_only.auxiliary_head) == {'rgb'}


def test_runs_for_three_modalities():
    runs = ablation.ablation_runs(['rgb', 'dsm', 'nir'])
    assert runs['dsm_only']['model.absent'] == ['rgb', 'nir']
    assert runs['nir_only']['model.aux_modalities'] == ['nir']


def test_schedule_options_keep_proportions():
    cfg = load_config(osp.join(ROOT, DEMO))
    assert cfg.train_cfg.max_iters == 600
    options = ablation.schedule_options(cfg, 60)
    assert options['train_cfg.max_iters'] == 60
    assert options['default_hooks.checkpoint.interval'] == 60
    # warm-up 60 of 600 iterations -> 6 of 60; cosine from there to the end
    assert (options['param_scheduler.0.begin'],
            options['param_scheduler.0.end']) == (0, 6)
    assert (options['param_scheduler.1.begin'],
            options['param_scheduler.1.end'],
            options['param_scheduler.1.T_max']) == (6, 60, 54)


def test_unknown_config_and_run_are_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="config 'nope.py' not found"):
        ablation.main(['nope.py'])
    with pytest.raises(SystemExit, match=r"unknown runs \['rgbonly'\]"):
        ablation.main([DEMO, '--runs', 'rgbonly'])


def test_short_run_from_another_folder(tmp_path, monkeypatch):
    data = str(tmp_path / 'data')
    generate_synthetic_dataset(
        data, num_train=4, num_test=1, test_tile_size=(136, 130))
    official = str(tmp_path / 'tiny.pth')
    subprocess.run([sys.executable, TINY_VIT, official], check=True,
                   capture_output=True)
    monkeypatch.chdir(tmp_path)  # relative --work-dir, config from ROOT
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    options = [
        f'train_dataloader.dataset.data_root={data}',
        f'test_dataloader.dataset.data_root={data}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        f'model.backbone.frozen_checkpoint={official}'
    ]
    ablation.main([DEMO, '--work-dir', 'abl', '--runs', 'fused', '--iters',
                   '2', '--cfg-options'] + options)
    work_dir = tmp_path / 'abl'
    assert (work_dir / 'fused' / 'iter_2.pth').is_file()
    with open(work_dir / 'results.json') as f:
        results = json.load(f)
    assert set(results) == {'fused/all', 'fused/no_rgb', 'fused/no_dsm'}
    for metrics in results.values():
        assert 0 <= metrics['mIoU'] <= 100 and 0 <= metrics['OA'] <= 100
