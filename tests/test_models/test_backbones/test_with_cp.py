"""MultiStreamViT(with_cp=True): the frozen blocks are checkpointed in
training (run again in backward, fewer tensors kept), with the same losses
and gradients, which still reach CPIA and the auxiliary patch embedding."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401

MODS = [
    dict(name='rgb', channels=3, mean=[0.] * 3, std=[1.] * 3),
    dict(name='dsm', channels=1, mean=[0.], std=[1.]),
]


def build(with_cp):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    norm = dict(type='BN', requires_grad=True)
    model = MODELS.build(dict(
        type='MultiModalEncoderDecoder',
        data_preprocessor=dict(
            type='MultiModalSegDataPreProcessor', modalities=MODS,
            size=(32, 32)),
        backbone=dict(
            type='MultiStreamViT', family='dinov2', with_cp=with_cp,
            arch=dict(embed_dims=64, num_layers=4, num_heads=2,
                      feedforward_channels=128),
            out_indices=[0, 1, 2, 3], stage_adapter=dict(type='CPIA'),
            encoder_cfg=dict(img_size=32, patch_size=8)),
        neck=dict(type='DGFMNeck', in_channels=[64] * 4, out_channels=16),
        decode_head=dict(
            type='UPerHeadNoBias', in_channels=[16] * 4,
            in_index=[0, 1, 2, 3], channels=8, num_classes=4,
            norm_cfg=norm, dropout_ratio=0.,
            loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True)),
        auxiliary_head=dict(
            type='FCNHeadNoBias', in_channels=16, in_index=0, channels=8,
            num_convs=1, concat_input=False, num_classes=4, norm_cfg=norm,
            dropout_ratio=0.)))
    model.init_weights()
    return model.train()


def batch():
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randn(4, 40, 36, generator=gen))
        s = SegDataSample(metainfo=dict(img_shape=(40, 36),
                                        ori_shape=(40, 36)))
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 4, (1, 40, 36), generator=gen))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def loss_and_grads(model):
    """Total loss, trainable gradients, calls of the first frozen block and
    bytes of the tensors autograd keeps for backward."""
    calls = []
    # a pre-hook: a recomputation stops once it has what backward needs,
    # before the block's forward hooks would run
    model.backbone.encoder.layers[0].register_forward_pre_hook(
        lambda *_: calls.append(1))
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    data = model.data_preprocessor(copy.deepcopy(batch()), True)
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
    assert all(p.grad is None for p in model.backbone.encoder.parameters())
    # checkpointing really happens: the block runs again in backward and
    # its activations are not kept
    assert (fwd, total) == (1, 1) and (fwd_cp, total_cp) == (1, 2)
    assert saved_cp < saved


def test_off_in_eval_and_without_grad():
    model = build(True).eval()
    calls = []
    model.backbone.encoder.layers[0].register_forward_pre_hook(
        lambda *_: calls.append(1))
    x = torch.randn(1, 4, 32, 32, requires_grad=True)
    model.backbone(x)[0].sum().backward()
    assert len(calls) == 1  # eval: not checkpointed
    with pytest.raises(TypeError):
        MODELS.build(dict(type='MultiStreamViT', modalities=MODS,
                          with_cp=True, unknown=1))
