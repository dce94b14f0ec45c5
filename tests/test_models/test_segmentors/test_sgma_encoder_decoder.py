"""SGMAEncoderDecoder: the presence mask from the data samples through
backbone, neck and head; modality-aware sampling and the weighted loss."""
import copy
import itertools

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401

init_default_scope('mmseg')

MODS = [
    dict(name='rgb', channels=3, mean=[0.] * 3, std=[1.] * 3),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.], std=[1.]),
    dict(name='nir', channels=1, kind='band', mean=[0.], std=[1.]),
]
SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]
CH = [8, 16, 32, 64]


def config(**kwargs):
    cfg = dict(
        type='SGMAEncoderDecoder',
        modalities=MODS,
        data_preprocessor=dict(type='MultiModalSegDataPreProcessor'),
        backbone=dict(
            type='MultiStreamEncoder',
            backbone=dict(type='ResNetV1c', depth=18, base_channels=8,
                          stem_channels=8)),
        neck=dict(type='SGFNeck', in_channels=CH, num_classes=4),
        decode_head=dict(type='SegformerHead', in_channels=CH,
                         in_index=[0, 1, 2, 3], channels=16, num_classes=4,
                         norm_cfg=dict(type='BN')))
    cfg.update(kwargs)
    return cfg


def build(seed=0, **kwargs):
    torch.manual_seed(seed)
    model = MODELS.build(config(**kwargs))
    model.init_weights()
    return model.eval()


def samples(presences, h=64, w=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for p in presences:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 4, (1, h, w), generator=gen))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w)))
        out.append(s)
    return out


def mask(presences, m=3):
    """(B, M) presence: each entry the indices present (None: all)."""
    return torch.tensor([[p is None or i in p for i in range(m)]
                         for p in presences])


def inputs(b, h=64, w=64, seed=1):
    return torch.randn(b, 5, h, w,
                       generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_mixed_subset_batch_gives_each_sample_its_result_alone():
    model = build()
    x = inputs(len(SUBSETS))
    batch = model.predict(x, samples(SUBSETS), mask(SUBSETS))
    logits = torch.stack([s.seg_logits.data for s in batch])
    for b, subset in enumerate(SUBSETS):
        alone = model.predict(x[b:b + 1], samples([subset]),
                          mask([subset]))[0]
        torch.testing.assert_close(logits[b], alone.seg_logits.data,
                                   atol=1e-5, rtol=1e-5)
    # the mask matters: the same image under two subsets differs
    full = model.predict(x[:1], samples([(0, 1, 2)]),
                          mask([(0, 1, 2)]))[0].seg_logits.data
    assert (full - logits[0]).abs().max() > 1e-3


@torch.no_grad()
def test_single_modality_finite_and_absent_values_unused():
    model = build()
    for m in range(3):
        x = inputs(2)
        logits = model.predict(x, samples([(m, )] * 2),
                          mask([(m, )] * 2))
        y = x.clone()
        channels = {0: [3, 4], 1: [0, 1, 2, 4], 2: [0, 1, 2, 3]}[m]
        y[:, channels] = float('nan')
        nan_logits = model.predict(y, samples([(m, )] * 2),
                          mask([(m, )] * 2))
        for a, b in zip(logits, nan_logits):
            assert torch.isfinite(a.seg_logits.data).all()
            assert torch.equal(a.seg_logits.data, b.seg_logits.data)


@torch.no_grad()
def test_absent_equals_presence_and_whole_slide_agree():
    model = build()
    x = inputs(2)
    by_meta = model.predict(x, samples([(0, 2)] * 2),
                          mask([(0, 2)] * 2))
    model.absent = ['dsm']
    by_drop = model.predict(x, samples([None] * 2),
                          mask([None] * 2))
    for a, b in zip(by_meta, by_drop):
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data)
    model.absent = ['dsm', 'nir']
    with pytest.raises(ValueError, match=r'samples \[0, 1\] have no '
                       r'modality present'):
        model.predict(x, samples([(1, 2)] * 2),
                          mask([(1, 2)] * 2))
    # slide windows see the mask of their sample
    model.absent = []
    model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64),
                                stride=(32, 32))
    x = inputs(2, 96, 80)
    slide = model.predict(x, samples([(0, ), (1, 2)], 96, 80),
                          mask([(0, ), (1, 2)]))
    for b, subset in enumerate([(0, ), (1, 2)]):
        alone = model.predict(x[b:b + 1], samples([subset], 96, 80),
                          mask([subset]))[0]
        torch.testing.assert_close(slide[b].seg_logits.data,
                                   alone.seg_logits.data,
                                   atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_loss_is_weighted_sgf_plus_mas_branch():
    model = build(loss_weights=dict(sgf=2.0, mas=1.0))
    x = inputs(3)
    subsets = [(0, 1, 2), (0, 2), (1, )]
    ds, presence = samples(subsets), mask(subsets)
    torch.manual_seed(7)
    losses = model.loss(x, ds, presence)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'mas.loss_ce',
                           'mas.acc_seg'}
    head = model.decode_head
    sgf = head.loss_by_feat(model.encode_decode(x, None, presence),
                            ds)['loss_ce']
    torch.testing.assert_close(losses['decode.loss_ce'], 2 * sgf)
    torch.manual_seed(7)
    feats = model.encode(x, presence)
    _, rob = model.neck(feats, presence=presence, return_robustness=True)
    picks = model.sample_modalities(rob, presence)
    for pick in picks:
        assert (pick.sum(1) == 1).all() and not (pick & ~presence).any()
    mas = head.loss_by_feat(
        model.logits_to_input_size(head(model.neck(feats, presence=picks)),
                                   x.shape[2:]), ds)['loss_ce']
    torch.testing.assert_close(losses['mas.loss_ce'], mas)
    no_mas = build(mas=False)
    assert set(no_mas.loss(x, ds, presence)) == {'decode.loss_ce',
                                                 'decode.acc_seg'}


def robustness(b):
    """(B, 3, 2, 2): half the pixels (0.5, 0.5), half (0.9, 0.1) for the
    first two modalities: inverted and normalised (0.5, 0.5) and (0.1,
    0.9); averaged over pixels (0.3, 0.7)."""
    rob = torch.zeros(b, 3, 2, 2)
    rob[:, 0, 0] = 0.5
    rob[:, 1, 0] = 0.5
    rob[:, 0, 1] = 0.9
    rob[:, 1, 1] = 0.1
    return rob


def test_sampling_probabilities_are_inverted_robustness():
    model = build(mas_granularity='sample')
    b = 20000
    presence = torch.tensor([[True, True, False]]).expand(b, 3)
    torch.manual_seed(0)
    pick, = model.sample_modalities([robustness(b)], presence)
    freq = pick.float().mean(0)
    assert freq[2] == 0
    assert abs(freq[1].item() - 0.7) < 0.015
    # per sample: the samples of one batch draw different modalities
    assert pick.any(0)[:2].all()


def test_iteration_granularity_one_modality_per_batch_and_stage():
    """The default (the paper's text): every sample of the batch gets the
    same one-hot mask per stage, drawn with the inverted-robustness
    probabilities; stages draw independently; a sample that lacks the
    drawn modality gets its own present one."""
    model = build()
    assert model.mas_granularity == 'iteration'
    b, draws = 4, 4000
    presence = torch.tensor([[True, True, False]]).expand(b, 3)
    torch.manual_seed(0)
    counts = torch.zeros(3)
    differ = 0
    for _ in range(draws):
        first, second = model.sample_modalities([robustness(b)] * 2,
                                                presence)
        for pick in (first, second):
            assert (pick.sum(1) == 1).all()
            assert (pick == pick[:1]).all()
        counts += first[0].float()
        differ += int(not torch.equal(first, second))
    assert counts[2] == 0
    assert abs(counts[1].item() / draws - 0.7) < 0.03
    assert differ > 0.3 * draws  # 1 - (0.3^2 + 0.7^2) = 0.42 expected
    # mixed subsets: the samples without the drawn modality
    mixed = torch.tensor([[True, True, False], [True, False, False],
                          [False, True, False]])
    for _ in range(50):
        pick, = model.sample_modalities([robustness(3)], mixed)
        assert (pick.sum(1) == 1).all() and not (pick & ~mixed).any()
    with pytest.raises(ValueError, match='mas_granularity'):
        build(mas_granularity='scale')


@pytest.mark.parametrize('granularity', ['iteration', 'sample'])
def test_training_reduces_the_loss(granularity):
    model = build(mas_granularity=granularity).train()
    # a learnable target: 8x8 blocks whose class is the sign pattern of
    # two rgb channels (present in every sample)
    x = torch.nn.functional.interpolate(inputs(4, 4, 4), scale_factor=8.)
    label = ((x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long())[:, None]
    subsets = [(0, 1, 2), (0, 1), (0, 2), (0, 1, 2)]
    ds, presence = samples(subsets, 32, 32), mask(subsets)
    for s, lab in zip(ds, label):
        s.gt_sem_seg = PixelData(data=lab)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        losses = model.loss(x, ds, presence)
        first = first or losses['decode.loss_ce'].item()
        optim.zero_grad()
        (losses['decode.loss_ce'] + losses['mas.loss_ce']).backward()
        optim.step()
    assert losses['decode.loss_ce'].item() < 0.6 * first


def test_config_errors():
    with pytest.raises(ValueError, match=r'SGFNeck\.num_modalities=2 but '
                       r'the modality spec has 3'):
        build(neck=dict(type='SGFNeck', in_channels=CH, num_modalities=2,
                        num_classes=4))
    with pytest.raises(ValueError, match='auxiliary_head'):
        build(auxiliary_head=dict(type='FCNHead'))
    with pytest.raises(ValueError, match='unknown keys'):
        build(loss_weights=dict(sgf=1, aux=1))


@torch.no_grad()
def test_sgf_as_neck_of_the_frozen_multi_stream_vit():
    """SGF on the frozen ViT's (M, B, 64, h, w) stages: absent modalities
    are zeroed channels for the ViT, absent for SGF."""
    tiny = dict(embed_dims=64, num_layers=4, num_heads=4,
                feedforward_channels=128)
    cfg = config(
        modalities=MODS[:2],
        backbone=dict(type='MultiStreamViT', family='dinov2', arch=tiny,
                      out_indices=[0, 1, 2, 3],
                      encoder_cfg=dict(img_size=56)),
        neck=dict(type='SGFNeck', in_channels=[64] * 4, num_classes=4),
        decode_head=dict(type='UPerHead', in_channels=[64] * 4,
                         in_index=[0, 1, 2, 3], channels=16, num_classes=4,
                         norm_cfg=dict(type='BN')))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    assert not any(p.requires_grad for p in model.backbone.encoder.parameters())
    x = inputs(3, 56, 56)[:, :4]
    subsets = [(0, 1), (0, ), (1, )]
    ds, presence = samples(subsets, 56, 56), mask(subsets, 2)
    batch = model.predict(x, ds, presence)
    for b in range(3):
        alone = model.predict(x[b:b + 1], [copy.deepcopy(ds[b])],
                              presence[b:b + 1])[0]
        assert torch.isfinite(batch[b].seg_logits.data).all()
        torch.testing.assert_close(batch[b].seg_logits.data,
                                   alone.seg_logits.data, atol=1e-5,
                                   rtol=1e-5)
