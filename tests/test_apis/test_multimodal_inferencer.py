"""``MultiModalInferencer``, mmseg's ``MMSegInferencer`` for multimodal
models: on each model family it predicts what ``inference_model`` and the
test loop predict; pictures and palette PNGs are named by the tile stem;
existing outputs are kept unless ``overwrite``. Fixtures: ``conftest.py``."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from mmseg.registry import DATASETS
from mmrsfusion.apis import MultiModalInferencer, inference_model
from mmrsfusion.io import read_raster

KEYS = dict(rgb='img_path', dsm='dsm_path', nir='nir_path')


def tile_files(model):
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    info = dataset.get_data_info(0)
    files = {m: info[KEYS[m]] for m in model.modalities.names}
    return dataset, files


def test_inferencer_equals_inference_model(trained, tmp_path):
    family, config, options, path, _ = trained
    inferencer = MultiModalInferencer(
        config, path, device='cpu', cfg_options=options)
    model = inferencer.model
    dataset, files = tile_files(model)
    loop = model.test_step(pseudo_collate([dataset[0]]))[0]
    api = inference_model(model, files)
    got = inferencer(files, return_datasamples=True)
    assert torch.equal(got.seg_logits.data, api.seg_logits.data)
    assert torch.equal(got.seg_logits.data, loop.seg_logits.data)
    # mmseg's result dict, files named by the tile stem
    out = tmp_path / 'out'
    result = inferencer(files, out_dir=str(out))
    expected = api.pred_sem_seg.data[0].numpy()
    assert np.array_equal(result['predictions'], expected)
    stem = osp.splitext(osp.basename(files['rgb']))[0]
    assert os.listdir(out / 'pred') == [f'{stem}.png']
    png = Image.open(out / 'pred' / f'{stem}.png')
    assert png.mode == 'P'
    assert np.array_equal(np.asarray(png), expected)
    assert png.getpalette()[:6] == [
        *model.dataset_meta['palette'][0], *model.dataset_meta['palette'][1]]
    # every modality and the prediction, side by side
    h, w = expected.shape
    vis = np.asarray(Image.open(out / 'vis' / f'{stem}.png'))
    assert vis.shape == (h, (len(files) + 1) * w, 3)
    # outputs are kept unless overwrite
    with pytest.raises(ValueError, match=rf'{stem}\.png exists; pass '
                       r'--overwrite \(overwrite=True\)'):
        inferencer(files, out_dir=str(out))
    inferencer.overwrite = True
    inferencer(files, out_dir=str(out))


def test_inferencer_arrays_and_absent_modalities(trained):
    _, config, options, path, _ = trained
    inferencer = MultiModalInferencer(
        config, path, device='cpu', cfg_options=options)
    model = inferencer.model
    _, files = tile_files(model)
    left = model.modalities.names[-1]
    partial = {m: read_raster(f) for m, f in files.items() if m != left}
    given = {m: a.copy() for m, a in partial.items()}
    got = inferencer([partial, files], return_datasamples=True,
                     return_vis=True)
    # pictures are drawn on copies, never on the caller's arrays
    assert all(np.array_equal(partial[m], a) for m, a in given.items())
    alone = [inference_model(model, t).seg_logits.data
             for t in (partial, files)]
    for pred, expected in zip(got, alone):
        assert torch.equal(pred.seg_logits.data, expected)
    # batched windows: the same up to float summation order
    got = inferencer([partial, files], return_datasamples=True,
                     batch_size=2)
    for pred, expected in zip(got, alone):
        assert torch.allclose(pred.seg_logits.data, expected, atol=1e-5)
    result = inferencer([partial], return_vis=True)
    # the absent modality's panel is grey (the picture's last W columns
    # are the prediction)
    vis, w = result['visualization'], len(result['predictions'][0])
    i = model.modalities.names.index(left)
    panel = vis[:, i * w:(i + 1) * w]
    assert (panel[-4:] == 96).all()


def test_inferencer_refuses_non_dict_inputs(trained):
    _, config, options, path, _ = trained
    inferencer = MultiModalInferencer(
        config, path, device='cpu', cfg_options=options)
    with pytest.raises(ValueError, match=r'inputs: expected a dict modality '
                       r'name -> file or array'):
        inferencer('tile.tif')
    with pytest.raises(ValueError, match=r"inputs\[1\]: expected a dict"):
        inferencer([{'rgb': np.zeros((8, 8, 3))}, 'tile.tif'], batch_size=2)
