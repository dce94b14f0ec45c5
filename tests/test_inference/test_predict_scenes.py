"""Mapping a scene list with one or several processes (torchrun, gloo on the
CPU): the same bytes whatever the number of ranks, resumable after a rank
is killed, and a summary."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('rasterio')
# the demo model of the single-scene tests (random weights), its options
from test_predict_scene import (CONFIG, OPTIONS, ROOT, _env,  # noqa: E402
                                checkpoint, model, read)

from mmrsfusion.datasets.scene_dataset import scene_rows  # noqa: E402
from mmrsfusion.inference.scene_inference import (  # noqa: E402
    class_meta, config_fingerprint, predict_scene)
from mmrsfusion.inference.scene_list import (STATE_DIR,  # noqa: E402
                                             predict_scenes)

__all__ = ['checkpoint', 'model']  # fixtures used here
BLOCK = 64
CLI_OPTIONS = ['--cfg-options', 'model.backbone.frozen_checkpoint=None',
               'model.test_cfg.crop_size=(64,64)',
               'model.test_cfg.stride=(40,40)']


@pytest.fixture(scope='module')
def scene_list(tmp_path_factory):
    """3 scenes of 128 x 192 pixels (6 blocks of 64 each), the DSM on
    another grid and extent."""
    from mmrsfusion.datasets.synthetic_scene import write_synthetic_scene_set
    return write_synthetic_scene_set(
        str(tmp_path_factory.mktemp('scenes')), num_scenes=3, height=128,
        width=192)


@pytest.fixture(scope='module')
def one_rank(model, checkpoint, scene_list, tmp_path_factory):
    """The scene list mapped in this process (no process group)."""
    model, cfg = model
    out = str(tmp_path_factory.mktemp('one') / 'maps')
    classes, palette = class_meta(model)  # as the CLI gives them
    summary = predict_scenes(
        model, scene_rows(scene_list, model.modalities.names), out,
        classes=classes, palette=palette, block_size=BLOCK, progress=False,
        fingerprint=config_fingerprint(cfg, checkpoint))
    return out, summary


def torchrun(args, procs=2):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
           f'--nproc_per_node={procs}'] + args
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                          timeout=600)


def cli(checkpoint, scene_list, out, *extra):
    return [osp.join(ROOT, 'tools', 'predict_scene.py'), CONFIG, checkpoint,
            '--scenes', scene_list, '-o', out, '--block-size', str(BLOCK),
            '--launcher', 'pytorch', '--no-progress', *extra, *CLI_OPTIONS]


def tif_bytes(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith('.tif'))
    assert names == ['scene_0.tif', 'scene_1.tif', 'scene_2.tif']
    return {n: open(osp.join(folder, n), 'rb').read() for n in names}


def test_one_rank_summary_and_same_bytes_as_predict_scene(
        model, checkpoint, scene_list, one_rank, tmp_path):
    """Each map is the bytes that predict_scene writes for its scene alone;
    the summary counts its valid pixels and their areas (0.25 m pixels:
    1/16 m^2 each)."""
    model, cfg = model
    out, summary = one_rank
    scene = scene_rows(scene_list, model.modalities.names)[1]
    classes, palette = class_meta(model)
    predict_scene(model, scene['paths'], str(tmp_path / 'alone.tif'),
                  classes=classes, palette=palette, block_size=BLOCK,
                  progress=False,
                  fingerprint=config_fingerprint(cfg, checkpoint))
    assert open(tmp_path / 'alone.tif', 'rb').read() == \
        tif_bytes(out)['scene_1.tif']
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f) == summary
    assert summary['processes'] == 1 and summary['total']['scenes'] == 3
    assert summary['total']['area_unit'] == 'square metre'
    total = 0
    for record in summary['scenes']:
        classes = read(osp.join(out, record['name'] + '.tif'), 1)
        counts = np.bincount(classes.ravel(), minlength=256)
        assert record['pixels'] == counts[:255].sum() > 0
        assert list(record['class_pixels'].values()) == \
            counts[:len(record['class_pixels'])].tolist()
        for name, pixels in record['class_pixels'].items():
            assert record['class_areas'][name] == pixels / 16
        total += record['pixels']
    assert summary['total']['pixels'] == total
    # nothing left of the run's state but the finished records
    assert sorted(os.listdir(osp.join(out, STATE_DIR))) == \
        ['scene_0.json', 'scene_1.json', 'scene_2.json']


def test_two_ranks_write_the_same_bytes(checkpoint, scene_list, one_rank,
                                        tmp_path):
    out = str(tmp_path / 'maps')
    proc = torchrun(cli(checkpoint, scene_list, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '3 scenes (0 resumed)' in proc.stdout
    assert 'mapped by 2 process(es)' in proc.stdout
    assert tif_bytes(out) == tif_bytes(one_rank[0])
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['processes'] == 2
    assert summary['total'] == one_rank[1]['total']


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {root!r})
from mmengine.dist import get_dist_info
import torch.distributed as dist
dist.init_process_group('gloo')
from mmrsfusion.datasets.scene_dataset import scene_rows
from mmrsfusion.inference.scene_inference import (load_segmentor,
    config_fingerprint)
from mmrsfusion.inference.scene_list import predict_scenes
model, cfg = load_segmentor({config!r}, {ckpt!r}, cfg_options={options!r})
def kill(done, total):
    if get_dist_info()[0] == 1 and done == 4:
        os.kill(os.getpid(), signal.SIGKILL)
predict_scenes(model, scene_rows({scenes!r}, model.modalities.names),
               {out!r}, block_size={block}, progress=False,
               on_block_done=kill,
               fingerprint=config_fingerprint(cfg, {ckpt!r}))
"""


def test_rank_killed_then_resumed_writes_the_same_bytes(
        checkpoint, scene_list, one_rank, tmp_path):
    """Rank 1 SIGKILLed after its 4th of 9 blocks (torchrun then stops rank
    0): ``--resume`` with 2 ranks keeps the stored blocks and writes the
    bytes of the uninterrupted 1-rank run."""
    out = str(tmp_path / 'maps')
    script = tmp_path / 'kill.py'
    script.write_text(KILL_SCRIPT.format(
        root=ROOT, config=CONFIG, ckpt=checkpoint, options=OPTIONS,
        scenes=scene_list, out=out, block=BLOCK))
    proc = torchrun([str(script)])
    assert proc.returncode != 0
    state = osp.join(out, STATE_DIR)
    stored = [n for _, _, files in os.walk(state) for n in files
              if n.startswith('block_')]
    assert 4 <= len(stored) < 18, stored
    assert not osp.exists(osp.join(out, 'summary.json'))

    # without --resume the existing maps (if any finished) are refused,
    # with it the run completes
    proc = torchrun(cli(checkpoint, scene_list, out, '--resume'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tif_bytes(out) == tif_bytes(one_rank[0])
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f)['total'] == one_rank[1]['total']


def test_resume_refuses_other_options(model, checkpoint, scene_list,
                                      one_rank, tmp_path):
    """Finished scenes of a run with other options are not taken as done;
    existing maps are not replaced without --overwrite."""
    model, cfg = model
    scenes = scene_rows(scene_list, model.modalities.names)
    classes, palette = class_meta(model)
    out = one_rank[0]
    with pytest.raises(ValueError, match=r"other \['options'\]"):
        predict_scenes(model, scenes, out, block_size=2 * BLOCK,
                       resume=True, progress=False,
                       fingerprint=config_fingerprint(cfg, checkpoint))
    with pytest.raises(ValueError, match='exists; pass --overwrite'):
        predict_scenes(model, scenes, out, block_size=BLOCK, progress=False,
                       fingerprint=config_fingerprint(cfg, checkpoint))
    # the same run resumed: every scene finished, nothing recomputed
    summary = predict_scenes(
        model, scenes, out, classes=classes, palette=palette,
        block_size=BLOCK, resume=True, progress=False,
        on_block_done=lambda *_: pytest.fail('a block was recomputed'),
        fingerprint=config_fingerprint(cfg, checkpoint))
    assert summary['scenes_resumed'] == 3
    assert summary['total'] == one_rank[1]['total']


def polygons(path):
    """The features of a class polygons GeoPackage: (WKB, class, name)."""
    pyogrio = pytest.importorskip('pyogrio')
    from mmrsfusion.inference.class_polygons import LAYER
    _, _, wkb, (values, names) = pyogrio.raw.read(path, layer=LAYER)
    return sorted(zip([bytes(g) for g in wkb], values.tolist(),
                      names.tolist()))


def test_vector_per_scene_written_listed_and_resumed(model, checkpoint,
                                                     scene_list, one_rank,
                                                     tmp_path):
    """``vector``: each scene's polygons in ``<name>.gpkg``, the polygons
    of its finished map (what predict_scene's writer makes of it, simplify
    honoured), listed in the summary, nothing partial left; resumed, the
    finished scenes (polygons included) are kept; other polygon options
    are refused on resume."""
    pytest.importorskip('pyogrio')
    from mmrsfusion.inference.class_polygons import write_class_polygons
    from mmrsfusion.inference.scene_output import NODATA
    model, cfg = model
    scenes = scene_rows(scene_list, model.modalities.names)
    classes, palette = class_meta(model)
    out = str(tmp_path / 'maps')
    options = dict(classes=classes, palette=palette, block_size=BLOCK,
                   progress=False,
                   fingerprint=config_fingerprint(cfg, checkpoint))
    summary = predict_scenes(model, scenes, out, vector=True, simplify=0.5,
                             **options)
    # the maps are those of the run without polygons
    assert tif_bytes(out) == tif_bytes(one_rank[0])
    assert summary['total'] == one_rank[1]['total']
    assert sorted(os.listdir(out)) == sorted(
        [STATE_DIR, 'summary.json'] + [f'scene_{i}{ext}' for i in range(3)
                                       for ext in ('.gpkg', '.tif',
                                                   '.tif.aux.xml')])
    for record in summary['scenes']:
        vector = osp.join(out, record['name'] + '.gpkg')
        assert record['vector'] == vector
        expected = str(tmp_path / (record['name'] + '_expected.gpkg'))
        write_class_polygons(osp.join(out, record['name'] + '.tif'),
                             expected, classes, NODATA, 0.5)
        assert polygons(vector) == polygons(expected) != []
    # simplify changes the polygons (the option reaches the writer)
    write_class_polygons(osp.join(out, 'scene_0.tif'),
                         str(tmp_path / 'exact.gpkg'), classes, NODATA, 0.0)
    assert polygons(str(tmp_path / 'exact.gpkg')) != \
        polygons(osp.join(out, 'scene_0.gpkg'))

    stamps = {n: os.stat(osp.join(out, n)).st_mtime_ns
              for n in os.listdir(out) if n.endswith('.gpkg')}
    again = predict_scenes(
        model, scenes, out, vector=True, simplify=0.5, resume=True,
        on_block_done=lambda *_: pytest.fail('a block was recomputed'),
        **options)
    assert again['scenes_resumed'] == 3
    assert [s['vector'] for s in again['scenes']] == \
        [s['vector'] for s in summary['scenes']]
    assert stamps == {n: os.stat(osp.join(out, n)).st_mtime_ns
                      for n in stamps}
    with pytest.raises(ValueError, match=r"other \['options'\]"):
        predict_scenes(model, scenes, out, vector=True, simplify=1.0,
                       resume=True, **options)
    # a missing polygon file: the scene is not finished, its map is kept
    os.remove(osp.join(out, 'scene_1.gpkg'))
    with pytest.raises(ValueError, match='scene_1.tif exists'):
        predict_scenes(model, scenes, out, vector=True, simplify=0.5,
                       resume=True, **options)


def test_vector_refused_without_its_options(model, scene_list, tmp_path):
    """--simplify without --vector is refused before any mapping; the CLI
    takes --vector without a path with --scenes and with one otherwise."""
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    from predict_scene import parse_args
    model, _ = model
    scenes = scene_rows(scene_list, model.modalities.names)
    with pytest.raises(ValueError, match='--simplify'):
        predict_scenes(model, scenes, str(tmp_path / 'maps'), simplify=1.0,
                       progress=False,
                       on_block_done=lambda *_: pytest.fail('mapped'))
    assert not osp.exists(tmp_path / 'maps')
    base = ['cfg.py', 'ckpt.pth']
    args = parse_args(base + ['--scenes', 'l.csv', '-o', 'o', '--vector'])
    assert args.vector == ''
    for bad in (['--scenes', 'l.csv', '-o', 'o', '--vector', 'v.gpkg'],
                ['--input', 'rgb=a.tif', '-o', 'o.tif', '--vector']):
        with pytest.raises(SystemExit):
            parse_args(base + bad)


def test_two_ranks_write_the_same_polygons(checkpoint, scene_list, one_rank,
                                           tmp_path):
    """``--scenes --vector`` with 2 ranks: the maps are the 1-rank run's
    bytes and each scene's polygons are those of its map (the GeoPackages
    differ only in their timestamps)."""
    pytest.importorskip('pyogrio')
    from mmrsfusion.inference.class_polygons import write_class_polygons
    from mmrsfusion.inference.scene_output import NODATA
    out = str(tmp_path / 'maps')
    proc = torchrun(cli(checkpoint, scene_list, out, '--vector',
                        '--simplify', '0.5'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tif_bytes(out) == tif_bytes(one_rank[0])
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    classes = list(summary['total']['class_pixels'])
    for record in summary['scenes']:
        assert record['vector'] == osp.join(out, record['name'] + '.gpkg')
        expected = str(tmp_path / (record['name'] + '.gpkg'))
        write_class_polygons(osp.join(one_rank[0], record['name'] + '.tif'),
                             expected, classes, NODATA, 0.5)
        assert polygons(record['vector']) == polygons(expected) != []
