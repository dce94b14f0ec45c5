"""MultiStreamViT(with_cp=True): the frozen blocks are checkpointed in
training (run again in backward, fewer tensors kept), with the same losses
and gradients, which still reach CPIA and the auxiliary patch embedding."""
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

from mmseg.registry import MODELS

import mmrsfusion  # noqa: F401
from mmrsfusion.utils import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
DEMO = osp.join(ROOT, 'configs', 'mobanet', 'demo_tinyvit_synthetic.py')
MODS = [dict(name='rgb', channels=3), dict(name='dsm', channels=1)]


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        'benchmark', osp.join(ROOT, 'tools', 'analysis_tools',
                              'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(with_cp):
    """The demo's MoBaNet (tiny random frozen ViT: width 64, depth 4)."""
    init_default_scope('mmseg')
    cfg = load_config(DEMO)
    cfg.model.backbone.update(frozen_checkpoint=None, with_cp=with_cp)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.train(), cfg


def loss_and_grads(built):
    """Total loss, trainable gradients, calls of the first frozen block and
    bytes of the tensors autograd keeps for backward."""
    model, cfg = built
    calls = []
    # a pre-hook: a recomputation stops once it has what backward needs,
    # before the block's forward hooks would run
    model.backbone.encoder.layers[0].register_forward_pre_hook(
        lambda *_: calls.append(1))
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    batch = _benchmark().train_batch(cfg, model, 2, (40, 36),
                                     torch.device('cpu'))
    torch.manual_seed(1)  # the same MCRM masks for both models
    data = model.data_preprocessor(batch, True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = model.parse_losses(model.loss(**data))
    forward_calls = len(calls)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()
             if p.requires_grad}
    return loss, grads, forward_calls, len(calls), sum(saved.values())


def test_same_loss_and_gradients_fewer_saved_tensors():
    loss, grads, fwd, total, saved = loss_and_grads(build(False))
    loss_cp, grads_cp, fwd_cp, total_cp, saved_cp = loss_and_grads(
        build(True))
    torch.testing.assert_close(loss_cp, loss, rtol=0, atol=1e-6)
    assert grads.keys() == grads_cp.keys()
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], rtol=1e-5,
                                   atol=1e-7, msg=name)
    # gradients reach CPIA (before the first block) and the DSM embedding
    for name in ('backbone.stage_adapters.0.down.1.weight',
                 'backbone.aux_embeds.dsm.weight'):
        assert grads_cp[name] is not None and grads_cp[name].abs().sum() > 0
    # the frozen encoder gets none
    model = build(True)
    loss_and_grads(model)
    assert all(p.grad is None for p in model[0].backbone.encoder.parameters())
    # checkpointing really happens: the block runs again in backward and
    # its activations are not kept
    assert (fwd, total) == (1, 1) and (fwd_cp, total_cp) == (1, 2)
    assert saved_cp < saved


def test_off_in_eval_and_without_grad():
    model = build(True)[0].eval()
    calls = []
    model.backbone.encoder.layers[0].register_forward_pre_hook(
        lambda *_: calls.append(1))
    x = torch.randn(1, 4, 32, 32, requires_grad=True)
    model.backbone(x)[0].sum().backward()
    assert len(calls) == 1  # eval: not checkpointed
    with pytest.raises(TypeError):
        MODELS.build(dict(type='MultiStreamViT', modalities=MODS,
                          with_cp=True, unknown=1))
