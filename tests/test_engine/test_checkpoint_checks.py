"""Checkpoints that cannot be used are refused with the file named: a
checkpoint of another architecture (tools/test.py, load_from, resume),
empty / text / damaged / non-dict files (also on --resume); and the other
run-time refusals of the tools (max_iters <= 0, --resume with nothing to
resume, a modality renamed on one side)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from test_trainable_checkpoint_hook import assets, demo_cfg  # noqa: F401

from mmseg.registry import MODELS
from mmrsfusion.checkpoint import (InvalidCheckpointError,
                                   load_checkpoint_safely,
                                   load_trainable_checkpoint)
from mmrsfusion.utils import ModalitySpec, load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MFNET_DEMO = osp.join(ROOT, 'configs', 'mfnet',
                      'demo_tinysam_mmadapter_synthetic.py')
SGMA_DEMO = osp.join(ROOT, 'configs', 'sgma', 'demo_r18_synthetic_rdn.py')


@pytest.fixture(scope='module')
def checkpoint(assets, tmp_path_factory):
    """A checkpoint of the demo architecture (all weights)."""
    model = MODELS.build(demo_cfg(assets, '/tmp/unused', 'ckpt').model)
    path = str(tmp_path_factory.mktemp('ckpt') / 'demo.pth')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


def _other_architecture(assets, work_dir, name, **options):
    """The demo config with a narrower decode head."""
    return demo_cfg(assets, work_dir, name,
                    **{'model.decode_head.channels': 16, **options})


def _cli(tool, *args):
    return subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', tool), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'),
        cwd=ROOT)


def test_tools_test_refuses_another_architecture(assets, checkpoint,
                                                 tmp_path):
    config = tmp_path / 'other.py'
    _other_architecture(assets, tmp_path / 'work', 'cli').dump(str(config))
    res = _cli('test.py', config, checkpoint, '--work-dir',
               tmp_path / 'work')
    assert res.returncode == 1, res.stdout
    error = res.stdout.strip().splitlines()[-1]
    assert error.startswith(f'error: Checkpoint {checkpoint} does '
                            'not fit the model of the config '
                            '(MultiModalEncoderDecoder): ')
    assert 'keys of another shape: decode_head.' in error
    assert '(6, 32, 1, 1) in the checkpoint vs (6, 16, 1, 1) in the model' \
        in error
    assert 'mIoU' not in res.stdout  # no metrics table


@pytest.fixture(scope='module')
def sgma_checkpoints(tmp_path_factory):
    """Checkpoints of the SGMA demo model: whole, and its decode head only
    (neither fits MFNet, whose frozen SAM weights they lack)."""
    init_default_scope('mmseg')
    model = MODELS.build(load_config(SGMA_DEMO).model)
    root = tmp_path_factory.mktemp('sgma')
    state = model.state_dict()
    paths = dict(sgma=str(root / 'sgma.pth'), head=str(root / 'head.pth'))
    torch.save(dict(meta=dict(), state_dict=state), paths['sgma'])
    torch.save(dict(meta=dict(), state_dict={
        k: v for k, v in state.items() if k.startswith('decode_head.')
    }), paths['head'])
    return paths


def _mfnet_cfg(assets, work_dir):
    cfg = load_config(MFNET_DEMO)
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.dataset.data_root': assets['data_root']})
    return cfg


@pytest.mark.parametrize('kind', ['sgma', 'head', 'mobanet'])
def test_misfit_checkpoint_blamed_before_frozen_weights(
        assets, checkpoint, sgma_checkpoints, tmp_path, kind):
    """MFNet's demo has no frozen_checkpoint: a checkpoint of another model
    lacks its frozen tensors too, but the error is that it does not fit."""
    path = checkpoint if kind == 'mobanet' else sgma_checkpoints[kind]
    cfg = _mfnet_cfg(assets, tmp_path / 'work')
    expected = (f'Checkpoint {path} does not fit the model of the config '
                '(MultiModalEncoderDecoder): ')
    with pytest.raises(InvalidCheckpointError) as err:
        load_trainable_checkpoint(MODELS.build(cfg.model), path)
    assert str(err.value).startswith(expected)
    assert 'frozen_checkpoint' not in str(err.value)
    config = tmp_path / 'mfnet.py'
    cfg.dump(str(config))
    res = _cli('test.py', config, path)
    assert res.returncode == 1, res.stdout
    error = res.stdout.strip().splitlines()[-1]
    assert error.startswith('error: ' + expected), error
    assert 'missing trained keys: backbone.' in error
    assert 'frozen_checkpoint' not in error


def test_matching_checkpoint_loads(assets, checkpoint, tmp_path):
    cfg = demo_cfg(assets, tmp_path, 'fits')
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    state = torch.load(checkpoint)['state_dict']
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_load_from_refused_unless_partial_is_intended(assets, checkpoint,
                                                      tmp_path):
    cfg = _other_architecture(assets, tmp_path / 'a', 'strict')
    cfg.load_from = checkpoint
    with pytest.raises(InvalidCheckpointError,
                       match=f'{checkpoint} does not fit'):
        Runner.from_cfg(cfg).train()
    # the config says partial loading is intended: what fits is loaded
    cfg = _other_architecture(
        assets, tmp_path / 'b', 'partial', max_iters=1,
        **{'default_hooks.checkpoint_fit.allow_partial': True})
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    runner.train()
    state = torch.load(checkpoint)['state_dict']
    assert torch.equal(runner.model.state_dict()['backbone.encoder.cls_token'],
                       state['backbone.encoder.cls_token'])


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory, checkpoint):
    root = tmp_path_factory.mktemp('bad')
    files = {}
    files['empty'] = root / 'empty.pth'
    files['empty'].write_bytes(b'')
    files['text'] = root / 'notes.pth'
    files['text'].write_text('best model: iteration 80000\n')
    files['tensor'] = root / 'tensor.pth'
    torch.save(torch.zeros(3), files['tensor'])
    files['truncated'] = root / 'truncated.pth'
    data = open(checkpoint, 'rb').read()
    files['truncated'].write_bytes(data[:len(data) // 2])
    return {k: str(v) for k, v in files.items()}


MESSAGES = {
    'empty': "'{}' is empty (0 bytes), not a checkpoint",
    'text': "'{}' is not a checkpoint: it was not written by torch.save "
    "(it starts with b'best mod'",
    'tensor': "'{}' holds a Tensor, not a checkpoint: expected a dict",
    'truncated': "Cannot read checkpoint '{}': the file is damaged or "
    'truncated',
}


@pytest.mark.parametrize('kind', sorted(MESSAGES))
def test_unusable_files_are_named(bad_files, kind):
    with pytest.raises(InvalidCheckpointError) as err:
        load_checkpoint_safely(bad_files[kind])
    assert str(err.value).startswith(MESSAGES[kind].format(bad_files[kind]))


@pytest.mark.parametrize('kind', ['empty', 'text'])
def test_tools_test_names_unusable_files(bad_files, assets, tmp_path, kind):
    config = tmp_path / 'demo.py'
    demo_cfg(assets, tmp_path / 'work', 'bad').dump(str(config))
    res = _cli('test.py', config, bad_files[kind])
    assert res.returncode == 1
    assert res.stdout.strip().splitlines()[-1] == 'error: ' + \
        MESSAGES[kind].format(bad_files[kind]) + (
            ': an interrupted copy or save? Use another checkpoint.'
            if kind == 'empty' else ", not a zip archive or a pickle)")


def test_resume_from_an_empty_latest_checkpoint(assets, tmp_path):
    """--resume picks the work dir's last checkpoint; a zero-byte one is
    named."""
    empty = tmp_path / 'iter_2.pth'
    empty.write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(empty))
    cfg = demo_cfg(assets, tmp_path, 'resume_empty')
    cfg.resume = True
    with pytest.raises(InvalidCheckpointError,
                       match=f"'{empty}' is empty"):
        Runner.from_cfg(cfg).train()


def test_train_refuses_max_iters_zero_and_warns_on_nothing_to_resume(
        assets, tmp_path):
    config = tmp_path / 'demo.py'
    demo_cfg(assets, tmp_path / 'work', 'cli', max_iters=1).dump(str(config))
    res = _cli('train.py', config, '--cfg-options', 'train_cfg.max_iters=0')
    assert res.returncode == 1
    assert res.stdout.strip().splitlines()[-1] == (
        'error: train_cfg.max_iters must be > 0, got 0: nothing would be '
        'trained')
    res = _cli('train.py', config, '--resume')
    assert res.returncode == 0, res.stdout
    assert ('--resume: no checkpoint to resume in the work dir '
            f'{tmp_path / "work"} (no last_checkpoint file there): TRAINING '
            'STARTS FROM SCRATCH, at iteration 0.') in res.stdout


def test_modality_renamed_in_the_model_only(assets, tmp_path):
    cfg = demo_cfg(assets, tmp_path, 'renamed', **{
        'model.modalities.1.name': 'height'})
    with pytest.raises(ValueError) as err:
        Runner.from_cfg(cfg).train()
    assert str(err.value) == (
        'model.modalities and train_dataloader.dataset.modalities declare '
        'different modality specs: [rgb:3 optical, height:1 elevation] vs '
        '[rgb:3 optical, dsm:1 elevation]. Declare the spec once (the '
        "config's top-level `modalities`)")


def test_checkpoints_record_their_spec_and_another_is_refused(
        assets, checkpoint, tmp_path):
    """tools/test.py and the scene mapper refuse a checkpoint whose
    recorded modality spec is not the config's, naming both."""
    config = tmp_path / 'demo.py'
    demo_cfg(assets, tmp_path / 'work', 'spec').dump(str(config))
    ckpt = torch.load(checkpoint, weights_only=False)
    spec = ModalitySpec(demo_cfg(assets, tmp_path, 'x').modalities)
    other = spec.to_dict()
    other[1]['name'] = 'height'
    ckpt['meta'] = dict(modalities=other)
    bad = str(tmp_path / 'other_spec.pth')
    torch.save(ckpt, bad)
    expected = ('the config (model.modalities) and the checkpoint '
                f'{bad} declare different modality specs: [rgb:3 optical, '
                'dsm:1 elevation] vs [rgb:3 optical, height:1 elevation]')
    res = _cli('test.py', config, bad, '--work-dir', tmp_path / 'work')
    assert res.returncode == 1, res.stdout
    assert res.stdout.strip().splitlines()[-1].startswith(
        f'error: {expected}')
    from mmrsfusion.inference.scene_inference import load_segmentor
    with pytest.raises(InvalidCheckpointError) as err:
        load_segmentor(str(config), bad)
    assert str(err.value).startswith(expected)
    # a training run records the spec in every checkpoint it writes
    cfg = demo_cfg(assets, tmp_path / 'train', 'record')
    Runner.from_cfg(cfg).train()
    saved = torch.load(str(tmp_path / 'train' / 'iter_2.pth'),
                       weights_only=False)
    assert saved['meta']['modalities'] == spec.to_dict()
