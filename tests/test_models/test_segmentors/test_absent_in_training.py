"""MultiModalEncoderDecoder(absent_in_training=True): the
``absent`` are zeroed (after normalisation) in training as well as
at inference, giving "the same model fed the other modality only"."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401

MODS = [
    dict(name='rgb', channels=3, mean=[0.] * 3, std=[1.] * 3),
    dict(name='dsm', channels=1, mean=[0.], std=[1.]),
]


def cfg(**kwargs):
    norm = dict(type='BN', requires_grad=True)
    model = dict(
        type='MultiModalEncoderDecoder',
        modalities=MODS,
        data_preprocessor=dict(
            type='MultiModalSegDataPreProcessor', size=(32, 32)),
        backbone=dict(
            type='MultiStreamViT', family='dinov2',
            arch=dict(embed_dims=32, num_layers=4, num_heads=2,
                      feedforward_channels=64),
            out_indices=[0, 1, 2, 3], stage_adapter=dict(type='CPIA'),
            encoder_cfg=dict(img_size=32, patch_size=8)),
        neck=dict(type='DGFMNeck', in_channels=[32] * 4, out_channels=16),
        decode_head=dict(
            type='UPerHeadNoBias', in_channels=[16] * 4,
            in_index=[0, 1, 2, 3], channels=8, num_classes=4,
            norm_cfg=norm, dropout_ratio=0.,
            loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True)),
        auxiliary_head=dict(
            type='FCNHeadNoBias', in_channels=16, in_index=0, channels=8,
            num_convs=1, concat_input=False, num_classes=4, norm_cfg=norm,
            dropout_ratio=0.),
        **kwargs)
    return model


def build(**kwargs):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg(**kwargs))
    model.init_weights()
    return model


def data(dsm_value=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(2):
        x = torch.randn(4, 32, 32, generator=gen)
        if dsm_value is not None:
            x[3] = dsm_value
        inputs.append(x)
        s = SegDataSample(metainfo=dict(
            img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32)))
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 4, (1, 32, 32), generator=gen))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def losses(model, batch):
    model.eval()  # deterministic (BN statistics, no dropout)
    batch = model.data_preprocessor(copy.deepcopy(batch), True)
    with torch.no_grad():
        return {k: v for k, v in model.loss(**batch).items()
                if k.endswith('loss_ce') or k.endswith('loss_hard_ce')}


def test_default_off_and_from_config():
    assert build().absent_in_training is False
    model = build(absent=['dsm'], absent_in_training=True)
    assert model.absent == ('dsm', )
    assert model.absent_in_training is True
    # through a config and --cfg-options-style merging
    c = Config(dict(model=cfg()))
    c.merge_from_dict({'model.absent': ['dsm'],
                       'model.absent_in_training': True})
    init_default_scope('mmseg')
    assert MODELS.build(c.model).absent_in_training is True


def test_training_loss_ignores_the_dropped_modality():
    """With the flag, the training losses do not depend on the dropped
    channels; without it (inference-only dropping) they do."""
    a, b = data(dsm_value=5.), data(dsm_value=-3.)
    on = build(absent=['dsm'], absent_in_training=True)
    la, lb = losses(on, a), losses(on, b)
    assert la.keys() == lb.keys() and len(la) == 3
    for key in la:
        assert torch.equal(la[key], lb[key]), key
    off = build(absent=['dsm'])
    la, lb = losses(off, a), losses(off, b)
    assert not torch.equal(la['decode.loss_ce'], lb['decode.loss_ce'])


@pytest.mark.parametrize('drop,zero_weight_grad', [(['dsm'], True),
                                                   (['rgb'], False)])
def test_train_step_with_dropped_modality(drop, zero_weight_grad):
    """A real train step runs (finite loss); in a backward pass a zeroed DSM
    gives its patch embedding no weight gradient (only its bias is used)."""
    model = build(absent=drop, absent_in_training=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = OptimWrapper(torch.optim.SGD(params, lr=0.))
    log_vars = model.train_step(data(), optim)
    assert torch.isfinite(log_vars['loss'])

    batch = model.data_preprocessor(data(), True)
    loss, _ = model.parse_losses(model.loss(**batch))
    loss.backward()
    conv = model.backbone.aux_embeds['dsm']
    assert conv.bias.grad is not None and conv.bias.grad.any()
    assert conv.weight.grad is not None
    assert bool(conv.weight.grad.any()) != zero_weight_grad
