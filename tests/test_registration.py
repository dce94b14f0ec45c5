"""A config outside the repository uses mmrsfusion through ``custom_imports``.

This is how another MMSegmentation project uses the plugin: the config is
written in a temporary folder, run from there in a fresh interpreter (the
repository is not on ``sys.path``), imports ``mmrsfusion`` through
``custom_imports`` with ``default_scope='mmseg'``, and builds this package's
dataset, transforms and model parts from mmseg's registries.
"""
import json
import os
import os.path as osp
import subprocess
import sys

from mmrsfusion.datasets import generate_synthetic_dataset

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

CONFIG = '''
custom_imports = dict(imports=['mmrsfusion'], allow_failed_imports=False)
default_scope = 'mmseg'
modalities = [
    dict(name='rgb', channels=3, kind='optical',
         mean=[127.5, 127.5, 127.5], std=[50.0, 50.0, 50.0]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.5], std=[0.25]),
]
dataset = dict(
    type='SyntheticMMDataset',
    data_root={data_root!r},
    data_prefix=dict(
        img_path='img_dir/train', dsm_path='dsm_dir/train',
        seg_map_path='ann_dir/train'),
    pipeline=[
        dict(type='LoadMultiModalImageFromFiles', modalities=modalities),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs'),
    ])
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='MultiModalSegDataPreProcessor', modalities=modalities,
        size=(64, 64)),
    backbone=dict(
        type='ResNetV1c', depth=18, in_channels=4, num_stages=2,
        out_indices=(1, ), strides=(1, 2), dilations=(1, 1),
        norm_cfg=dict(type='BN')),
    decode_head=dict(
        type='FCNHead', in_channels=128, channels=16, num_convs=1,
        num_classes=6, norm_cfg=dict(type='BN')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
'''

SCRIPT = '''
import json
import os
import sys
from mmengine.config import Config
from mmengine.registry import init_default_scope

root = os.path.realpath(sys.argv[1])
assert root not in {os.path.realpath(p or '.') for p in sys.path}, sys.path
cfg = Config.fromfile('config.py')  # runs custom_imports
import mmrsfusion
init_default_scope(cfg.default_scope)
from mmseg.registry import DATASETS, MODELS, TRANSFORMS

for registry, name in ((DATASETS, 'SyntheticMMDataset'),
                       (TRANSFORMS, 'LoadMultiModalImageFromFiles'),
                       (MODELS, 'MultiModalSegDataPreProcessor')):
    assert registry.scope == 'mmseg' and name in registry.module_dict, name

dataset = DATASETS.build(cfg.dataset)
model = MODELS.build(cfg.model)
batch = model.data_preprocessor(
    dict(inputs=[dataset[0]['inputs']],
         data_samples=[dataset[0]['data_samples']]), training=True)
losses = model.loss(batch['inputs'], batch['data_samples'])
print(json.dumps(dict(
    module=mmrsfusion.__file__,
    dataset=type(dataset).__name__,
    length=len(dataset),
    inputs=list(batch['inputs'].shape),
    preprocessor=type(model.data_preprocessor).__name__,
    loss=float(sum(v for k, v in losses.items() if 'loss' in k)))))
'''


def test_custom_imports_from_outside_the_repo(tmp_path):
    data_root = str(tmp_path / 'data')
    generate_synthetic_dataset(
        data_root, num_train=2, num_test=1, tile_size=64,
        test_tile_size=64)
    work = tmp_path / 'project'
    work.mkdir()
    (work / 'config.py').write_text(CONFIG.format(data_root=data_root))
    (work / 'check.py').write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run(
        [sys.executable, 'check.py', ROOT],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['module'].startswith(ROOT + os.sep)  # the installed plugin
    assert out['dataset'] == 'SyntheticMMDataset'
    assert out['length'] == 2
    assert out['inputs'] == [1, 4, 64, 64]  # rgb + dsm stacked
    assert out['preprocessor'] == 'MultiModalSegDataPreProcessor'
    assert out['loss'] > 0
