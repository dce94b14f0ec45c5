"""PerSceneMetric: a metric over all samples and over each scene's."""
import numpy as np
import pytest
import torch

import mmrsfusion  # noqa: F401
from mmrsfusion.evaluation import PerSceneMetric
from mmseg.evaluation import IoUMetric

CLASSES = ('a', 'b', 'c')


def sample(scene, pred, gt):
    out = dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
               gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))
    if scene is not None:
        out['scene'] = scene
    return out


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    for s in samples:
        metric.process({}, [s])
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('inner', [
    dict(type='IoUMetric', iou_metrics=['mIoU', 'mFscore']),
    dict(type='ISPRSMetric', foreground_classes=[0, 1, 2])])
def test_overall_and_per_scene_equal_the_wrapped_metric(inner):
    rng = np.random.RandomState(0)
    samples = [sample(scene, rng.randint(0, 3, (8, 8)),
                      rng.randint(0, 3, (8, 8)))
               for scene in ('x', 'y', 'x', 'z', 'y')]
    # scene z: a perfect prediction
    samples[3]['pred_sem_seg'] = samples[3]['gt_sem_seg']
    from mmseg.registry import METRICS
    got = evaluate(PerSceneMetric(metric=inner), samples)
    want = evaluate(METRICS.build(inner), samples)
    for key, value in want.items():
        assert got[key] == value, key
    for scene in ('x', 'y', 'z'):
        alone = evaluate(METRICS.build(inner),
                         [s for s in samples if s['scene'] == scene])
        for key, value in alone.items():
            assert got[f'{scene}/{key}'] == value, (scene, key)
    assert got['z/mIoU'] == 100
    assert got['x/mIoU'] != got['y/mIoU']


def test_sample_without_scene_named():
    metric = PerSceneMetric(metric=dict(type='IoUMetric'))
    metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ValueError, match="no 'scene' metainfo"):
        metric.process({}, [sample(None, np.zeros((2, 2)), np.zeros((2, 2)))])


def test_scene_dataset_samples_carry_their_scene(tmp_path):
    """The packed samples of SceneDataset hold ``scene`` (and ``window``)
    as metainfo: what PerSceneMetric groups by."""
    from mmengine.registry import init_default_scope
    from mmrsfusion.datasets import SceneDataset
    from mmrsfusion.datasets.synthetic_scene import write_synthetic_scene_set
    init_default_scope('mmseg')
    write_synthetic_scene_set(str(tmp_path), num_scenes=2, height=96,
                              width=96)
    ds = SceneDataset(
        ann_file='scenes.csv', data_root=str(tmp_path), test_mode=True,
        modalities=[dict(name='rgb', channels=3, kind='optical'),
                    dict(name='dsm', channels=1, kind='elevation')],
        crop_size=(64, 64), metainfo=dict(classes=CLASSES * 2),
        pipeline=[dict(type='PackSegInputs')])
    scenes = [ds[i]['data_samples'].to_dict()['scene']
              for i in range(len(ds))]
    assert set(scenes) == {'scene_0', 'scene_1'}
    assert ds[0]['data_samples'].metainfo['window'] == \
        tuple(ds.get_data_info(0)['window'])
