"""TrainableCheckpointHook: checkpoints without the frozen backbone, which
load back completely (load_from, resume, tools/test.py-style) by
re-attaching it from the backbone's pretrained file.

Runs the shipped demo config (configs/mobanet/demo_tinyvit_synthetic.py)
through real mmengine Runners, shrunk: a width-32 ViT whose "pretrained"
weights are a tiny file with the official DINOv2 key names, 2 iterations on
a few synthetic tiles.
"""
import importlib.util
import logging
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.checkpoint import (META_KEY, attach_frozen,
                                   load_trainable_checkpoint, strip_frozen)
from mmrsfusion.datasets import generate_synthetic_dataset
from mmrsfusion.engine.hooks import TrainableCheckpointHook
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')
WIDTH = 32
FROZEN_PREFIX = 'backbone.encoder.'


def _tiny_vit_tool():
    spec = importlib.util.spec_from_file_location(
        'make_tiny_vit_checkpoint',
        osp.join(ROOT, 'tools', 'misc', 'make_tiny_vit_checkpoint.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_frozen_file(path, seed=0):
    """A tiny ViT checkpoint with the official DINOv2 key names."""
    sd = _tiny_vit_tool().make_state_dict(
        embed_dims=WIDTH, depth=4, patch_size=8, grid=8, seed=seed)
    torch.save(sd, str(path))
    return str(path)


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp('assets')
    data_root = str(root / 'data')
    generate_synthetic_dataset(
        data_root, num_train=4, num_test=2, tile_size=64,
        test_tile_size=(80, 72))
    return dict(
        data_root=data_root,
        frozen=write_frozen_file(root / 'tiny_dinov2_pretrain.pth'),
        other_frozen=write_frozen_file(root / 'other_pretrain.pth', seed=1))


def demo_cfg(assets, work_dir, name, frozen='default', max_iters=2,
             **options):
    """The demo config, shrunk for a test."""
    init_default_scope('mmseg')
    cfg = load_config(DEMO)
    frozen = assets['frozen'] if frozen == 'default' else frozen
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'experiment_name': name,
        'visualizer.name': f'visualizer_{name}',
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': assets['data_root'],
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.dataset.data_root': assets['data_root'],
        'model.backbone.arch': dict(
            embed_dims=WIDTH, num_layers=4, num_heads=2,
            feedforward_channels=4 * WIDTH),
        'model.backbone.encoder_cfg': dict(img_size=64, patch_size=8),
        'model.backbone.frozen_checkpoint': frozen,
        'model.neck.in_channels': [WIDTH] * 4,
        'model.test_cfg': dict(
            mode='slide', crop_size=(64, 64), stride=(48, 48)),
        'train_cfg.max_iters': max_iters,
        'default_hooks.checkpoint.interval': max_iters,
        'default_hooks.logger.interval': 1,
        **options
    })
    return cfg


def probe(model):
    """Main logits of a fixed input, in eval mode."""
    x = torch.randn(2, 4, 48, 40, generator=torch.Generator().manual_seed(3))
    model.eval()
    with torch.no_grad():
        return model(x, mode='tensor')


def frozen_reference(assets, path=None):
    """The frozen encoder weights as the backbone loads them."""
    cfg = demo_cfg(assets, '/tmp/unused', 'reference')
    model = MODELS.build(cfg.model)
    model.backbone.load_frozen(path or assets['frozen'])
    return {
        FROZEN_PREFIX + k: v.clone()
        for k, v in model.backbone.encoder.state_dict().items()
    }


@pytest.fixture(scope='module')
def trained(assets, tmp_path_factory):
    """A 2-iteration training run of the shrunk demo config."""
    work_dir = tmp_path_factory.mktemp('train')
    runner = Runner.from_cfg(
        demo_cfg(assets, work_dir, 'train', **{
            'default_hooks.checkpoint.published_keys': ['meta', 'state_dict']
        }))
    runner.train()
    return dict(
        runner=runner,
        work_dir=work_dir,
        checkpoint=str(work_dir / 'iter_2.pth'),
        logits=probe(runner.model),
        state_dict={k: v.clone()
                    for k, v in runner.model.state_dict().items()})


def test_hook_is_in_the_shipped_configs():
    import glob
    configs = glob.glob(osp.join(ROOT, 'configs', 'mobanet', '**', '*.py'),
                        recursive=True)
    configs = [c for c in configs if '_base_' not in c]
    assert len(configs) >= 10
    for path in configs:
        cfg = load_config(path)
        types = [h['type'] for h in cfg.get('custom_hooks', [])]
        assert 'TrainableCheckpointHook' in types, path


def test_checkpoint_holds_only_trained_weights(trained, assets):
    ckpt = _load_checkpoint(trained['checkpoint'], map_location='cpu')
    keys = set(ckpt['state_dict'])
    assert not [k for k in keys if k.startswith(FROZEN_PREFIX)]
    expected = {
        k for k in trained['state_dict'] if not k.startswith(FROZEN_PREFIX)
    }
    assert keys == expected
    # every trainable parameter is in it (and BN statistics, etc.)
    model = trained['runner'].model
    for name, p in model.named_parameters():
        assert (name in keys) == p.requires_grad, name
    assert any(k.startswith('backbone.stage_adapters.') for k in keys)
    assert any(k.startswith('backbone.aux_embeds.') for k in keys)
    record = ckpt['meta'][META_KEY]['backbone']
    assert record['frozen_checkpoint'] == assets['frozen']
    assert record['num_tensors'] == len(model.backbone.frozen_keys())
    # what resuming needs is there too
    assert {'optimizer', 'param_schedulers', 'message_hub'} <= set(ckpt)


def test_tools_test_style_loading_restores_the_trained_model(
        trained, assets, tmp_path):
    """tools/test.py: cfg.load_from = CKPT, Runner.test(). The fresh model's
    frozen encoder starts random (test does not init weights); the hook
    re-attaches the pretrained one, giving bit-identical outputs."""
    cfg = demo_cfg(assets, tmp_path, 'test')
    cfg.load_from = trained['checkpoint']
    runner = Runner.from_cfg(cfg)
    before = runner.model.backbone.encoder.state_dict()
    reference = frozen_reference(assets)
    assert not all(
        torch.equal(before[k[len(FROZEN_PREFIX):]], v)
        for k, v in reference.items())
    metrics = runner.test()
    assert 'mIoU' in metrics
    state = runner.model.state_dict()
    for key, value in trained['state_dict'].items():
        assert torch.equal(state[key], value), key
    assert torch.equal(probe(runner.model), trained['logits'])


def test_published_checkpoint(trained, assets):
    """The MoBaNet recipe also publishes the last checkpoint with weights
    and meta only: still without the frozen ViT, and loadable."""
    import glob
    (path, ) = glob.glob(str(trained['work_dir'] / 'iter_2-*.pth'))
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert set(ckpt) == {'meta', 'state_dict'}
    assert not [k for k in ckpt['state_dict'] if k.startswith(FROZEN_PREFIX)]
    model = MODELS.build(demo_cfg(assets, '/tmp/unused', 'published').model)
    load_trainable_checkpoint(model, path, strict=True)
    assert torch.equal(probe(model), trained['logits'])


def test_strict_load_checkpoint(trained, assets, tmp_path):
    runner = Runner.from_cfg(demo_cfg(assets, tmp_path, 'strict'))
    runner.load_checkpoint(trained['checkpoint'], strict=True)
    assert torch.equal(probe(runner.model), trained['logits'])


def test_load_trainable_checkpoint_outside_a_runner(trained, assets):
    cfg = demo_cfg(assets, '/tmp/unused', 'plain')
    model = MODELS.build(cfg.model)
    load_trainable_checkpoint(model, trained['checkpoint'], strict=True)
    assert torch.equal(probe(model), trained['logits'])


def test_resume(trained, assets, tmp_path):
    """--resume from the trainable-only checkpoint: iterations, optimizer
    state and weights carry on; the frozen encoder is the pretrained one."""
    cfg = demo_cfg(
        assets, tmp_path, 'resume', max_iters=4,
        **{'default_hooks.checkpoint.interval': 2})
    cfg.resume = True
    cfg.load_from = trained['checkpoint']
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    ckpt = _load_checkpoint(str(tmp_path / 'iter_4.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    assert not [k for k in ckpt['state_dict'] if k.startswith(FROZEN_PREFIX)]
    state = runner.model.state_dict()
    for key, value in frozen_reference(assets).items():
        assert torch.equal(state[key], value), key
    # the optimizer state was resumed: AdamW's step count is 2 + 2
    steps = {
        float(s['step'])
        for s in runner.optim_wrapper.optimizer.state_dict()['state'].values()
    }
    assert steps == {4.0}


def test_random_frozen_weights_are_kept(assets, tmp_path, capsys):
    """Without a pretrained file the frozen weights cannot be re-created:
    they stay in the checkpoint, with a warning, and load back as usual."""
    runner = Runner.from_cfg(
        demo_cfg(assets, tmp_path, 'random', frozen=None, max_iters=1))
    runner.train()
    logits = probe(runner.model)
    ckpt = _load_checkpoint(str(tmp_path / 'iter_1.pth'), map_location='cpu')
    assert set(ckpt['state_dict']) == set(runner.model.state_dict())
    assert META_KEY not in ckpt['meta']
    assert 'has no frozen_checkpoint' in capsys.readouterr().out

    cfg = demo_cfg(assets, tmp_path / 'load', 'random_load', frozen=None)
    cfg.load_from = str(tmp_path / 'iter_1.pth')
    loaded = Runner.from_cfg(cfg)
    loaded.load_or_resume()
    assert torch.equal(probe(loaded.model), logits)


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _logger():
    logger = logging.getLogger('test_trainable_checkpoint_hook')
    handler = _Records()
    logger.handlers = [handler]
    logger.propagate = False
    return logger, handler


def test_missing_frozen_weights_without_a_file_fail(trained, assets):
    cfg = demo_cfg(assets, '/tmp/unused', 'nofile', frozen=None)
    model = MODELS.build(cfg.model)
    ckpt = _load_checkpoint(trained['checkpoint'], map_location='cpu')
    with pytest.raises(RuntimeError, match='frozen_checkpoint='):
        attach_frozen(ckpt, model)


def test_other_frozen_weights_warn(trained, assets):
    """Re-attaching from a file whose weights differ from those trained with
    (checksum) or from another path warns."""
    cfg = demo_cfg(
        assets, '/tmp/unused', 'other', frozen=assets['other_frozen'])
    model = MODELS.build(cfg.model)
    ckpt = _load_checkpoint(trained['checkpoint'], map_location='cpu')
    logger, records = _logger()
    attached = attach_frozen(ckpt, model, logger)
    assert len(attached) == len(model.backbone.frozen_keys())
    text = '\n'.join(records.messages)
    assert assets['other_frozen'] in text and 'differ' in text


def test_strip_then_attach_round_trip(assets):
    """The functions the hook uses, without a runner: strip removes exactly
    the frozen keys; attach restores the same tensors."""
    cfg = demo_cfg(assets, '/tmp/unused', 'roundtrip')
    model = MODELS.build(cfg.model)
    model.init_weights()
    full = {k: v.clone() for k, v in model.state_dict().items()}
    ckpt = dict(state_dict=dict(full), meta={})
    records = strip_frozen(ckpt, model)
    assert set(full) - set(ckpt['state_dict']) == {
        FROZEN_PREFIX + k for k in model.backbone.encoder.state_dict()
    }
    assert records['backbone']['num_tensors'] == len(
        model.backbone.frozen_keys())
    other = MODELS.build(cfg.model)
    attach_frozen(ckpt, other)
    assert set(ckpt['state_dict']) == set(full)
    for key, value in full.items():
        assert torch.equal(ckpt['state_dict'][key], value), key
    assert TrainableCheckpointHook.priority == 'VERY_LOW'


def _state_dict_bytes(config, frozen):
    """Bytes of a model's state dict, built on 'meta' (no memory)."""
    init_default_scope('mmseg')
    cfg = load_config(config)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    frozen_keys = {f'backbone.{k}' for k in model.backbone.frozen_keys()}
    return sum(v.numel() * v.element_size()
               for k, v in model.state_dict().items()
               if frozen or k not in frozen_keys)


def test_vitl_checkpoint_size():
    """A ViT-L MoBaNet's saved weights: tens of MB instead of > 1 GB."""
    config = osp.join(ROOT, 'configs', 'mobanet', 'dinov2_vitl_vaihingen.py')
    trainable_only = _state_dict_bytes(config, frozen=False)
    full = _state_dict_bytes(config, frozen=True)
    assert 30e6 < trainable_only < 40e6  # 8,981,376 float32 + BN buffers
    assert full > 1.2e9


def test_tta_model_is_unwrapped(trained, assets):
    """tools/test.py --tta loads into SegTTAModel(module=segmentor), whose
    checkpoint keys are the segmentor's: the frozen keys go there too."""
    cfg = demo_cfg(assets, '/tmp/unused', 'tta')
    tta = MODELS.build(dict(type='SegTTAModel', module=cfg.model))
    ckpt = _load_checkpoint(trained['checkpoint'], map_location='cpu')
    attached = attach_frozen(ckpt, tta)
    assert attached and all(k.startswith(FROZEN_PREFIX) for k in attached)
    load_trainable_checkpoint(tta, trained['checkpoint'], strict=True)
    assert torch.equal(probe(tta.module), trained['logits'])
