"""ModalitySpec: validation with named errors, layout, serialisation,
presence masks, zeroing, handing down to configs."""
import pickle

import pytest
import torch
from mmengine.config import Config

from mmseg.registry import MODELS
from mmrsfusion.checkpoint import (InvalidCheckpointError,
                                   check_checkpoint_spec, save_checkpoint_spec)
from mmrsfusion.utils import ModalitySpec, bind_config_spec, takes_modalities

ENTRIES = [
    dict(name='rgb', channels=3, kind='optical', mean=[1, 2, 3],
         std=[4, 5, 6]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.], std=[1.]),
    dict(name='nir', channels=1, kind='band', bands=[3], mean=[127.5],
         std=[127.5]),
]


def test_layout_and_defaults():
    spec = ModalitySpec(ENTRIES)
    assert spec.names == ('rgb', 'dsm', 'nir')
    assert [(m.start, m.stop) for m in spec] == [(0, 3), (3, 4), (4, 5)]
    assert spec.num_channels == 5
    assert spec['dsm'].norm == 'minmax' and spec['dsm'].nodata == (-9999., )
    assert spec['rgb'].norm is None and spec['rgb'].nodata == ()
    assert spec['nir'].bands == (3, )
    assert spec.mean_std() == ([1, 2, 3, 0, 127.5], [4, 5, 6, 1, 127.5])
    assert ModalitySpec.build(spec) is spec


@pytest.mark.parametrize('entries,match', [
    ([], r'modalities: expected a non-empty list'),
    ([dict(name='a')], r"modalities\[0\]: expected a dict with keys"),
    ([dict(name='a', channels=0)], r'modalities\[0\]\.channels \(a\)'),
    ([dict(name='a', channels=1), dict(name='a', channels=1)],
     r"modalities\[1\]\.name: duplicate modality 'a'"),
    ([dict(name='a', channels=1, kind='sar')], r'modalities\[0\]\.kind'),
    ([dict(name='a', channels=3, mean=[1, 2])],
     r"modalities\[0\]\.mean: 2 value\(s\) but the modality 'a' has 3"),
    ([dict(name='a', channels=1, std=[0])], r'modalities\[0\]\.std \(a\)'),
    ([dict(name='a', channels=1, kind='band', norm='minmax')],
     r"'norm' and 'nodata' apply to kind 'elevation' only"),
    ([dict(name='a', channels=1, kind='elevation', norm='log')],
     r'modalities\[0\]\.norm \(a\)'),
    ([dict(name='a', channels=2, bands=[0])], r'modalities\[0\]\.bands'),
    ([dict(name='a', channels=1, colour='red')],
     r"modalities\[0\]: unknown keys \['colour'\]"),
])
def test_invalid_entries_are_named(entries, match):
    with pytest.raises(ValueError, match=match):
        ModalitySpec(entries)


def test_round_trips():
    spec = ModalitySpec(ENTRIES)
    assert ModalitySpec.from_dict(spec.to_dict()) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert ModalitySpec(ENTRIES[:2]) != spec
    assert hash(ModalitySpec(ENTRIES)) == hash(spec)


def test_split_select_and_names():
    spec = ModalitySpec(ENTRIES)
    x = torch.arange(5.).view(1, 5, 1, 1)
    parts = spec.split(x)
    assert list(parts) == ['rgb', 'dsm', 'nir']
    assert parts['nir'].flatten().tolist() == [4.]
    assert spec.select(x, ['nir', 'rgb']).flatten().tolist() == [4, 0, 1, 2]
    with pytest.raises(ValueError, match=r'expected 5 channels'):
        spec.split(torch.zeros(1, 4, 1, 1))
    with pytest.raises(ValueError, match=r"model.absent: unknown "
                       r"modalities \['sar'\]; the modality spec has"):
        spec.check_names(['dsm', 'sar'], 'model.absent')
    assert spec.check_names('dsm', 'f') == ('dsm', )


def test_presence_and_zeroing():
    spec = ModalitySpec(ENTRIES)
    presence = spec.presence(['dsm'], batch_size=2)
    assert presence.tolist() == [[True, False, True]] * 2
    with pytest.raises(ValueError, match=r'samples \[0\] have no modality'):
        spec.presence(['rgb', 'dsm', 'nir'])
    with pytest.raises(ValueError, match=r'shape \(3, 3\)'):
        spec.check_presence(presence, batch_size=3)
    with pytest.raises(ValueError, match=r'bool tensor'):
        spec.check_presence(presence.float())
    x = torch.full((2, 5, 2, 2), float('nan'))
    presence = torch.tensor([[True, False, True], [False, True, False]])
    out = spec.zero_absent(x, presence)
    assert (out[0, 3] == 0).all() and out[0, :3].isnan().all()
    assert (out[1, :3] == 0).all() and (out[1, 4] == 0).all()
    assert out[1, 3].isnan().all()
    full = torch.ones(2, 3, dtype=torch.bool)
    assert spec.zero_absent(x, full) is x


def test_takes_modalities_through_kwargs():
    assert takes_modalities(dict(type='SGMAEncoderDecoder'), MODELS)
    assert takes_modalities(dict(type='MultiStreamViT'), MODELS)
    assert not takes_modalities(dict(type='UPerHead'), MODELS)
    assert not takes_modalities('MultiStreamViT', MODELS)


def test_bind_refuses_another_spec():
    spec = ModalitySpec(ENTRIES)
    cfg = dict(type='MultiStreamEncoder', modalities=ENTRIES[:2])
    with pytest.raises(ValueError, match=r'model\.modalities and '
                       r'model\.backbone\.modalities declare different'):
        spec.bind(cfg, MODELS, 'model.backbone')
    assert spec.bind(dict(cfg, modalities=ENTRIES), MODELS,
                     'b')['modalities'] is spec


def config(**extra):
    cfg = Config(dict(
        modalities=ENTRIES[:2],
        data_preprocessor=dict(size=(64, 64)),
        model=dict(type='MultiModalEncoderDecoder',
                   data_preprocessor=dict(type='MultiModalSegDataPreProcessor',
                                          size=(32, 32))),
        train_dataloader=dict(dataset=dict(type='SyntheticMMDataset')),
        test_dataloader=dict(dataset=dict(
            type='RepeatDataset', dataset=dict(type='SyntheticMMDataset')))))
    cfg.merge_from_dict(extra)
    return cfg


def test_config_declares_once():
    cfg = bind_config_spec(config())
    entries = ModalitySpec(ENTRIES[:2]).to_dict()
    assert cfg.model.modalities == entries
    assert cfg.model.data_preprocessor.size == (64, 64)
    assert cfg.train_dataloader.dataset.modalities == entries
    assert cfg.test_dataloader.dataset.dataset.modalities == entries


def test_config_with_data_spec_unlike_model_spec_fails_naming_both():
    cfg = config(**{'train_dataloader.dataset.modalities': ENTRIES})
    with pytest.raises(ValueError, match=r'modalities and '
                       r'train_dataloader\.dataset\.modalities declare '
                       r'different modality specs: \[rgb:3 optical, dsm:1 '
                       r'elevation\] vs \[rgb:3 optical, dsm:1 elevation, '
                       r'nir:1 band\]'):
        bind_config_spec(cfg)
    cfg = config(**{'model.modalities': [dict(ENTRIES[0], mean=[9, 9, 9]),
                                         ENTRIES[1]]})
    with pytest.raises(ValueError, match=r'rgb\.mean: \(1\.0, 2\.0, 3\.0\) '
                       r'vs \(9\.0, 9\.0, 9\.0\)'):
        bind_config_spec(cfg)


def test_checkpoint_spec():
    spec = ModalitySpec(ENTRIES)
    checkpoint = dict(state_dict={})
    check_checkpoint_spec(checkpoint, spec, 'old.pth')  # none recorded
    save_checkpoint_spec(checkpoint, spec)
    assert checkpoint['meta']['modalities'] == spec.to_dict()
    check_checkpoint_spec(checkpoint, ModalitySpec(ENTRIES), 'a.pth')
    with pytest.raises(InvalidCheckpointError, match=r'the config '
                       r'\(model\.modalities\) and the checkpoint b\.pth '
                       r'declare different modality specs'):
        check_checkpoint_spec(checkpoint, ModalitySpec(ENTRIES[:2]), 'b.pth')
