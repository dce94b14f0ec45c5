"""MixedPrecisionOptimWrapper on the CPU: bfloat16 autocast in a real
training step built the way the runner builds it, float32 weights and
optimizer state, frozen weights untouched; the --amp switches of
tools/train.py and tools/test.py."""
import copy
import importlib.util
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from mmengine.registry import init_default_scope
from mmengine.runner.amp import autocast
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401
import mmrsfusion.engine
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason='the CPU path')


def build():
    """The demo model (tiny random frozen ViT, CPIA, DGFM, MCRM) in
    training, and a batch as its dataloader gives it."""
    init_default_scope('mmseg')
    cfg = load_config(DEMO)
    cfg.model.backbone.frozen_checkpoint = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    spec = importlib.util.spec_from_file_location(
        'benchmark', osp.join(ROOT, 'tools', 'analysis_tools',
                              'benchmark.py'))
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    return model, benchmark.train_batch(cfg, model, 2, (48, 40),
                                        torch.device('cpu'))


def wrapper_cfg(**kwargs):
    return dict(type='MixedPrecisionOptimWrapper',
                optimizer=dict(type='AdamW', lr=1e-3), **kwargs)


def test_train_step_in_bfloat16_keeps_float32_weights():
    model, batch = build()
    wrapper = build_optim_wrapper(model, wrapper_cfg())
    dtypes = []
    model.backbone.stage_adapters[0].up.register_forward_hook(
        lambda m, i, o: dtypes.append(o.dtype))
    frozen = copy.deepcopy(model.backbone.encoder.state_dict())
    cpia = model.backbone.stage_adapters[0].up.weight.detach().clone()
    log_vars = model.train_step(copy.deepcopy(batch), wrapper)
    assert dtypes == [torch.bfloat16]  # the forward ran under autocast
    assert torch.isfinite(log_vars['loss'])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(model.backbone.stage_adapters[0].up.weight, cpia)
    for key, value in model.backbone.encoder.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    exp_avg = next(iter(state['state'].values()))['exp_avg']
    assert exp_avg.dtype == torch.float32
    # a state dict saved on a GPU (with a scaler) resumes here
    wrapper.load_state_dict(dict(copy.deepcopy(state), loss_scaler={}))
    # outside the optimizer context: float32 again
    dtypes.clear()
    model.loss(**model.data_preprocessor(batch, True))
    assert dtypes == [torch.float32]


def test_float16_on_cpu_is_refused():
    with pytest.raises(ValueError, match='bfloat16 only'):
        build_optim_wrapper(build()[0], wrapper_cfg(dtype='float16'))
    wrapper = build_optim_wrapper(build()[0],
                                  wrapper_cfg(dtype='bfloat16'))
    assert wrapper.cast_dtype == torch.bfloat16


@pytest.mark.parametrize('script,flag', [('train', 'optim_wrapper'),
                                         ('test', 'test_cfg')])
def test_amp_flags(script, flag, monkeypatch, tmp_path):
    """--amp reaches the runner: the optimizer wrapper type, or the test
    loop's autocast switch."""
    seen = {}

    def from_cfg(cfg):
        seen['cfg'] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(Runner, 'from_cfg', staticmethod(from_cfg))
    # the flags only: the run's files (data, weights, checkpoint) are not
    # made here
    monkeypatch.setattr(mmrsfusion.engine, 'check_run_files',
                        lambda *args, **kwargs: None)
    args = [DEMO]
    args += ['ckpt.pth'] if script == 'test' else []
    monkeypatch.setattr(sys, 'argv', [script] + args +
                        ['--amp', '--work-dir', str(tmp_path)])
    with pytest.raises(SystemExit):
        runpy.run_path(osp.join(ROOT, 'tools', f'{script}.py'),
                       run_name='__main__')
    cfg = seen['cfg']
    if script == 'train':
        assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper'
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    else:
        assert cfg.test_cfg.fp16 is True
    assert isinstance(cfg, Config)


def test_bfloat16_slide_inference_follows_float32():
    """The test loop's autocast (test.py --amp) on the demo's slide
    inference: float32 logits averaged over the windows, close to the
    float32 run."""
    model = build()[0].eval()
    gen = torch.Generator().manual_seed(0)
    tile = torch.randn(1, 4, 200, 176, generator=gen)
    meta = dict(img_shape=(200, 176), ori_shape=(200, 176),
                pad_shape=(200, 176), padding_size=[0, 0, 0, 0])
    out = {}
    for amp in (False, True):
        with torch.no_grad(), autocast(enabled=amp):
            out[amp] = model.predict(
                tile, [SegDataSample(metainfo=dict(meta))])[0]
    low, full = out[True].seg_logits.data, out[False].seg_logits.data
    assert low.dtype == torch.float32 and low.shape == full.shape
    assert not torch.equal(low, full)  # it did run in bfloat16
    spread = full.max() - full.min()
    assert (low - full).abs().max() < 0.05 * spread
