"""The modality-presence mask from the data: a dataset allowing missing
files, the loader marking them absent, training-time modality dropout, the
packing into the data sample, and the data preprocessor's (B, M) presence. Plus the synthetic third modality (NIR)."""
import logging
import os
import os.path as osp

import numpy as np
import pytest
import tifffile
import torch
from mmengine.registry import init_default_scope

from mmseg.registry import DATASETS, MODELS
from mmrsfusion.datasets import generate_synthetic_dataset
from mmrsfusion.datasets.synthetic import synthesize_nir
from mmrsfusion.datasets.transforms import (LoadMultiModalImageFromFiles,
                                            RandomModalityDrop)

init_default_scope('mmseg')

MODS = [
    dict(name='rgb', channels=3, kind='optical', mean=[100.] * 3,
         std=[50.] * 3),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.5], std=[0.25]),
    dict(name='nir', channels=1, kind='band', mean=[127.5], std=[127.5]),
]


@pytest.fixture(scope='module')
def rdn(tmp_path_factory):
    root = generate_synthetic_dataset(
        str(tmp_path_factory.mktemp('p') / 'rdn'), num_train=3, num_test=1,
        tile_size=64, test_tile_size=(64, 48), nir=True)
    os.remove(osp.join(root, 'nir_dir', 'train', 'train_0001.tif'))
    return root


def dataset(root, **kwargs):
    """The dataset owns the spec and hands it to its pipeline."""
    pipeline = [
        dict(type='LoadMultiModalImageFromFiles'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs'),
    ]
    cfg = dict(type='SyntheticMMDataset', data_root=root, modalities=MODS,
               data_prefix=dict(img_path='img_dir/train',
                                dsm_path='dsm_dir/train',
                                nir_path='nir_dir/train',
                                seg_map_path='ann_dir/train'),
               pipeline=pipeline)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_missing_file_is_an_error_unless_allowed(rdn):
    with pytest.raises(FileNotFoundError, match="train_0001.*nir_path"):
        dataset(rdn)
    with pytest.raises(ValueError, match='allow_missing'):
        dataset(rdn, allow_missing=['img_path'])
    with pytest.raises(ValueError, match='allow_missing'):
        dataset(rdn, allow_missing=['sar_path'])
    with pytest.raises(FileNotFoundError, match="train_0001.*nir_path.*"
                       r"allow_missing=\['nir_path'\]"):
        dataset(rdn)
    ds = dataset(rdn, allow_missing=['nir_path'])
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [i['nir_path'] is None for i in infos] == [False, True, False]


def test_allowed_missing_files_are_counted_in_one_warning(rdn, monkeypatch):
    from mmrsfusion.datasets import multimodal_dataset
    logged = []
    monkeypatch.setattr(multimodal_dataset, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw['level'])))
    dataset(rdn, allow_missing=['nir_path'])
    assert logged == [('SyntheticMMDataset: 3 tiles; files missing '
                       '(allow_missing, those modalities are absent): '
                       'nir_path 1', logging.WARNING)]


def test_dataset_hands_its_one_spec_to_the_pipeline(rdn):
    ds = dataset(rdn, allow_missing=['nir_path'])
    assert ds.pipeline.transforms[0].modalities is ds.modalities
    with pytest.raises(ValueError, match=r'SyntheticMMDataset\.pipeline\[0\]'
                       r'\.modalities declare different modality specs'):
        dataset(rdn, allow_missing=['nir_path'], pipeline=[
            dict(type='LoadMultiModalImageFromFiles', modalities=MODS[:2])])


def test_presence_through_loader_packing_and_preprocessor(rdn):
    """Presence: loader -> data sample field (whatever the packing
    transform) -> the preprocessor's (B, M) batch tensor; the segmentor,
    not the preprocessor, zeroes the absent channels."""
    ds = dataset(rdn, allow_missing=['nir_path'])
    items = [ds[i] for i in range(3)]
    presence = [it['data_samples'].presence.tolist() for it in items]
    assert presence == [[True, True, True], [True, True, False],
                        [True, True, True]]
    assert (items[1]['inputs'][4] == 0).all()  # raw zeros when loaded
    pre = MODELS.build(dict(type='MultiModalSegDataPreProcessor',
                            modalities=MODS))
    batch = dict(inputs=[it['inputs'] for it in items],
                 data_samples=[it['data_samples'] for it in items])
    # under a segmentor that cannot take presence: refused, not zeros
    with pytest.raises(ValueError, match=r'samples \[1\] lack modalities.*'
                       r'MultiModalEncoderDecoder'):
        pre(batch)
    pre.with_presence = True  # as MultiModalEncoderDecoder sets it
    data = pre(batch)
    assert data['presence'].dtype == torch.bool
    assert data['presence'].tolist() == presence
    x = data['inputs']
    assert torch.allclose(x[1, 4], torch.tensor(-1.))  # (0 - 127.5) / 127.5
    expected = (items[1]['inputs'][3].float() - 0.5) / 0.25
    torch.testing.assert_close(x[1, 3], expected)


def test_loader_needs_one_present_modality(rdn):
    load = LoadMultiModalImageFromFiles(MODS)
    with pytest.raises(FileNotFoundError, match='every modality'):
        load(dict(img_path=None, dsm_path=None, nir_path=None))
    with pytest.raises(FileNotFoundError, match="no 'nir_path'"):
        load(dict(img_path=osp.join(rdn, 'img_dir/train/train_0000.tif'),
                  dsm_path=osp.join(rdn, 'dsm_dir/train/train_0000.tif')))


def results(presence=(True, True, True)):
    return dict(img=np.ones((4, 4, 5), np.float32), presence=presence)


def test_random_modality_drop_draws_proper_nonempty_subsets():
    drop = RandomModalityDrop(MODS, prob=1.0)
    np.random.seed(0)
    seen = {}
    for _ in range(600):
        out = drop(results())
        p = out['presence']
        seen[p] = seen.get(p, 0) + 1
        assert (out['img'] == 1).all()  # presence only: no zeroing here
    assert set(seen) == {(True, False, False), (False, True, False),
                         (False, False, True), (True, True, False),
                         (True, False, True), (False, True, True)}
    assert min(seen.values()) > 60  # about uniform: 100 each
    # an already absent modality stays absent; one left is never dropped
    for _ in range(50):
        p = drop(results((True, False, True)))['presence']
        assert p in {(True, False, False), (False, False, True)}
        assert drop(results((False, True, False)))['presence'] == \
            (False, True, False)


def test_random_modality_drop_options():
    np.random.seed(0)
    keep_rgb = RandomModalityDrop(MODS, prob=1.0, droppable=['dsm', 'nir'])
    for _ in range(50):
        assert keep_rgb(results())['presence'][0]
    never = RandomModalityDrop(MODS, prob=0.0)
    assert never(results())['presence'] == (True, True, True)
    with pytest.raises(ValueError, match=r"RandomModalityDrop\.droppable: "
                       r"unknown modalities \['sar'\]"):
        RandomModalityDrop(MODS, droppable=['sar'])
    with pytest.raises(ValueError, match='prob'):
        RandomModalityDrop(MODS, prob=1.5)


def test_pipeline_with_dropout_reaches_the_data_sample(rdn):
    ds = dataset(rdn, allow_missing=['nir_path'], pipeline=[
        dict(type='LoadMultiModalImageFromFiles'),
        dict(type='RandomModalityDrop', prob=1.0),
        dict(type='PackSegInputs'),
    ])
    np.random.seed(1)
    p = ds[0]['data_samples'].presence
    assert p.dtype == torch.bool and 1 <= int(p.sum()) < 3


def test_synthetic_nir(tmp_path):
    root = generate_synthetic_dataset(
        str(tmp_path / 'a'), num_train=2, num_test=1, tile_size=64,
        test_tile_size=(64, 48), nir=True)
    plain = generate_synthetic_dataset(
        str(tmp_path / 'b'), num_train=2, num_test=1, tile_size=64,
        test_tile_size=(64, 48))
    # RGB / DSM / labels identical with and without the third modality
    for sub in ('img_dir/train/train_0001.tif', 'dsm_dir/train/train_0001.tif'):
        assert np.array_equal(tifffile.imread(osp.join(root, sub)),
                              tifffile.imread(osp.join(plain, sub)))
    nir = tifffile.imread(osp.join(root, 'nir_dir/test/test_0000.tif'))
    assert nir.dtype == np.uint8 and nir.shape == (64, 48)
    assert not osp.exists(osp.join(plain, 'nir_dir'))
    # its own evidence: roofs and roads, alike in RGB, differ in NIR
    label = np.zeros((64, 64), np.uint8)
    label[:, 32:] = 1  # impervious | building
    band = synthesize_nir(np.random.default_rng(0), label).astype(float)
    assert band[:, 36:].mean() - band[:, :28].mean() > 50


def test_make_synthetic_dataset_cli_nir(tmp_path):
    import runpy
    tool = runpy.run_path(osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'tools', 'misc', 'make_synthetic_dataset.py'))
    out = str(tmp_path / 'rdn')
    assert tool['main']([out, '--num-train', '1', '--num-test', '1',
                         '--tile-size', '64', '--test-tile-size', '64', '48',
                         '--nir']) == 0
    assert osp.isfile(osp.join(out, 'nir_dir', 'test', 'test_0000.tif'))
