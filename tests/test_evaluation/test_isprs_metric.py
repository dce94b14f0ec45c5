"""ISPRSMetric against hand-computed values.

The hand example (3 classes ``a``, ``b``, ``clutter``; 255 = ignore):

sample 1 (2x3)            sample 2 (2x3)
GT    0 0 1   pred 0 1 1   GT   0 0 0   pred 0 0 2
      1 2 255      1 2 0        2 2 1        2 0 1

Pairs (gt, pred), the ignored pixel dropped:
sample 1: (0,0) (0,1) (1,1) (1,1) (2,2)        -> 5 pixels
sample 2: (0,0) (0,0) (0,2) (2,2) (2,0) (1,1)  -> 6 pixels

ONE confusion matrix (rows GT, columns prediction), sum of both samples:

            p=0 p=1 p=2 | GT total
    t=0      3   1   1  |  5
    t=1      0   3   0  |  3
    t=2      1   0   2  |  3
    pred     4   4   3  | 11,  trace 8

OA = 8/11 = 72.7273 %  (per-sample mean would be (4/5 + 4/6)/2 = 73.33 %)
class a:       TP 3, FP 1, FN 2 -> F1 = 6/9 = 66.6667, IoU = 3/6 = 50
class b:       TP 3, FP 1, FN 0 -> F1 = 6/7 = 85.7143, IoU = 3/4 = 75
class clutter: TP 2, FP 1, FN 1 -> F1 = 4/6 = 66.6667, IoU = 2/4 = 50
foreground (a, b):      mF1 = (6/9 + 6/7)/2 = 76.1905, mIoU = (1/2 + 3/4)/2 = 62.5
all three as foreground: mF1 = (6/9 + 6/7 + 4/6)/3 = 73.0159, mIoU = 58.3333
Kappa: po = 8/11, pe = (5*4 + 3*4 + 3*3)/11**2 = 41/121,
       (po - pe)/(1 - pe) = (88 - 41)/(121 - 41) = 47/80 = 58.75 %
"""
import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import PixelData

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import mmrsfusion  # noqa: F401  (registers ISPRSMetric)
from mmrsfusion.evaluation import ISPRSMetric

ISPRS_CLASSES = ('impervious_surface', 'building', 'low_vegetation', 'tree',
                 'car', 'clutter')

GT1 = [[0, 0, 1], [1, 2, 255]]
PRED1 = [[0, 1, 1], [1, 2, 0]]
GT2 = [[0, 0, 0], [2, 2, 1]]
PRED2 = [[0, 0, 2], [2, 0, 1]]
EXPECTED_CM = np.array([[3, 1, 1], [0, 3, 0], [1, 0, 2]])


def _sample(pred, gt):
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
    s.gt_sem_seg = PixelData(data=torch.as_tensor(gt)[None])
    s.set_metainfo(dict(img_path='tile.png'))
    return s


def _evaluate(pairs, classes, batch_size=1, **metric_kwargs):
    """Run the metric the way mmengine's test loop does."""
    metric = METRICS.build(dict(type='ISPRSMetric', **metric_kwargs))
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(classes=classes)
    samples = [_sample(p, g) for p, g in pairs]
    for i in range(0, len(samples), batch_size):
        evaluator.process(samples[i:i + batch_size])
    return evaluator.evaluate(len(samples)), metric


def test_hand_computed_example():
    res, metric = _evaluate([(PRED1, GT1), (PRED2, GT2)],
                            ('a', 'b', 'clutter'),
                            foreground_classes=[0, 1],
                            precision=None)
    np.testing.assert_array_equal(metric.confusion_matrix, EXPECTED_CM)
    expected = {
        'OA': 800 / 11,
        'F1.a': 600 / 9, 'F1.b': 600 / 7, 'F1.clutter': 400 / 6,
        'IoU.a': 50.0, 'IoU.b': 75.0, 'IoU.clutter': 50.0,
        'mF1': (600 / 9 + 600 / 7) / 2,
        'mIoU': 62.5,
        'Kappa': 4700 / 80,
    }
    assert set(res) == set(expected)
    for key, value in expected.items():
        assert res[key] == pytest.approx(value, abs=1e-9), key
    # one matrix over the test set, not a mean of per-sample scores
    assert res['OA'] != pytest.approx((4 / 5 + 4 / 6) / 2 * 100, abs=0.1)


def test_default_rounding_and_batching():
    """Default precision rounds to 2 decimals; batch size does not matter."""
    res, _ = _evaluate([(PRED1, GT1), (PRED2, GT2)], ('a', 'b', 'clutter'),
                       batch_size=2, foreground_classes=['a', 'b'])
    assert res['OA'] == 72.73
    assert res['mF1'] == 76.19
    assert res['mIoU'] == 62.5
    assert res['Kappa'] == 58.75
    assert res['F1.b'] == 85.71


def test_foreground_option():
    res, _ = _evaluate([(PRED1, GT1), (PRED2, GT2)], ('a', 'b', 'clutter'),
                       foreground_classes=[0, 1, 2], precision=None)
    assert res['mF1'] == pytest.approx((600 / 9 + 600 / 7 + 400 / 6) / 3)
    assert res['mIoU'] == pytest.approx((50 + 75 + 50) / 3)
    # OA, Kappa and per-class numbers do not depend on the foreground list
    assert res['OA'] == pytest.approx(800 / 11)
    assert res['Kappa'] == pytest.approx(58.75)
    res, _ = _evaluate([(PRED1, GT1), (PRED2, GT2)], ('a', 'b', 'clutter'),
                       foreground_classes=['b'], precision=None)
    assert res['mF1'] == pytest.approx(600 / 7)
    assert res['mIoU'] == pytest.approx(75)


def test_invalid_foreground_classes():
    with pytest.raises(ValueError, match='not one of'):
        _evaluate([(PRED1, GT1)], ('a', 'b', 'clutter'),
                  foreground_classes=['car'])
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        _evaluate([(PRED1, GT1)], ('a', 'b', 'clutter'),
                  foreground_classes=[0, 3])
    with pytest.raises(ValueError, match='at least one'):
        ISPRSMetric(foreground_classes=[])


def test_ignore_pixels():
    """Ignored pixels count nowhere, whatever is predicted there."""
    pred1_other = [[0, 1, 1], [1, 2, 2]]  # differs only at the ignored pixel
    res_a, m_a = _evaluate([(PRED1, GT1), (PRED2, GT2)], ('a', 'b', 'c'),
                           precision=None, foreground_classes=[0, 1])
    res_b, m_b = _evaluate([(pred1_other, GT1), (PRED2, GT2)],
                           ('a', 'b', 'c'), precision=None,
                           foreground_classes=[0, 1])
    assert res_a == res_b
    assert m_a.confusion_matrix.sum() == 11  # 12 pixels, 1 ignored

    # a custom ignore index: label 1 ignored -> only classes 0 and 2 remain
    res, m = _evaluate([(PRED1, GT1), (PRED2, GT2)], ('a', 'b', 'c'),
                       ignore_index=1, precision=None,
                       foreground_classes=[0, 1])
    # kept pairs: s1 (0,0) (0,1) (2,2); s2 (0,0) (0,0) (0,2) (2,2) (2,0);
    # the GT value 255 is outside [0, 3) and dropped as well
    np.testing.assert_array_equal(m.confusion_matrix,
                                  [[3, 1, 1], [0, 0, 0], [1, 0, 2]])
    assert res['OA'] == pytest.approx(500 / 8)
    assert res['IoU.b'] == 0.0  # predicted once, never in GT -> 0, not NaN
    assert res['F1.a'] == pytest.approx(600 / 9)
    assert res['mIoU'] == pytest.approx(25.0)  # (3/6 + 0) / 2


def test_perfect_prediction_gives_100():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(3):
        gt = rng.integers(0, 6, size=(17, 23))
        gt[0, :4] = 255
        pairs.append((torch.from_numpy(gt.copy()).clamp(max=5),
                       torch.from_numpy(gt)))
    res, _ = _evaluate(pairs, ISPRS_CLASSES)
    assert all(v == 100.0 for v in res.values()), res
    assert len(res) == 4 + 2 * 6
    # the same for a tile of one single class (Kappa's expected agreement 1)
    one = torch.full((8, 8), 3)
    res, _ = _evaluate([(one, one)], ISPRS_CLASSES)
    assert res['OA'] == res['Kappa'] == res['mF1'] == res['mIoU'] == 100.0


def test_absent_classes_are_nan_and_excluded():
    """Classes in neither GT nor prediction: NaN, left out of the means."""
    gt = torch.tensor([[0, 0, 1, 5], [0, 1, 1, 5]])
    pred = torch.tensor([[0, 0, 1, 5], [1, 1, 1, 0]])
    res, m = _evaluate([(pred, gt)], ISPRS_CLASSES, precision=None)
    for name in ('low_vegetation', 'tree', 'car'):
        assert math.isnan(res[f'F1.{name}'])
        assert math.isnan(res[f'IoU.{name}'])
    # impervious: TP 2, FP 1 (clutter->imp), FN 1 (imp->building)
    assert res['F1.impervious_surface'] == pytest.approx(400 / 6)
    # building: TP 3, FP 1, FN 0
    assert res['F1.building'] == pytest.approx(600 / 7)
    assert res['mF1'] == pytest.approx((400 / 6 + 600 / 7) / 2)
    assert res['mIoU'] == pytest.approx((200 / 4 + 300 / 4) / 2)
    assert res['OA'] == pytest.approx(600 / 8)
    # a foreground class in the GT but never predicted counts as 0
    gt2 = torch.tensor([[4, 0], [0, 0]])
    pred2 = torch.tensor([[0, 0], [0, 0]])
    res, _ = _evaluate([(pred2, gt2)], ISPRS_CLASSES, precision=None)
    assert res['F1.car'] == 0.0
    assert res['mF1'] == pytest.approx((600 / 7 + 0) / 2)
    # every foreground class absent -> NaN means, no crash
    clutter = torch.full((3, 3), 5)
    res, _ = _evaluate([(clutter, clutter)], ISPRS_CLASSES)
    assert math.isnan(res['mF1']) and math.isnan(res['mIoU'])
    assert res['OA'] == 100.0


def test_agrees_with_mmseg_areas_and_kappa_formula():
    """The per-sample matrix carries exactly mmseg's intersect_and_union."""
    rng = np.random.default_rng(1)
    gt = torch.from_numpy(rng.integers(0, 6, size=(40, 50)))
    gt[rng.random((40, 50)) < 0.1] = 255
    pred = torch.from_numpy(rng.integers(0, 6, size=(40, 50)))
    cm = ISPRSMetric.confusion(pred, gt, 6, 255).double()
    inter, union, area_pred, area_gt = IoUMetric.intersect_and_union(
        pred, gt, 6, 255)
    torch.testing.assert_close(torch.diagonal(cm), inter.double())
    torch.testing.assert_close(cm.sum(0), area_pred.double())
    torch.testing.assert_close(cm.sum(1), area_gt.double())
    torch.testing.assert_close(cm.sum(0) + cm.sum(1) - torch.diagonal(cm),
                               union.double())
    # Kappa vs a direct formula on the flattened labels
    valid = gt != 255
    g, p = gt[valid].numpy(), pred[valid].numpy()
    po = (g == p).mean()
    pe = sum((g == k).mean() * (p == k).mean() for k in range(6))
    assert ISPRSMetric.kappa(cm.numpy()) == pytest.approx((po - pe) /
                                                          (1 - pe))


def test_prints_table(tmp_path):
    log_file = tmp_path / 'eval.log'
    MMLogger.get_instance('test_isprs_metric_table', log_file=str(log_file))
    _evaluate([(PRED1, GT1), (PRED2, GT2)], ('a', 'b', 'clutter'),
              foreground_classes=[0, 1])
    text = log_file.read_text()
    for word in ('Class', 'F1', 'IoU', 'OA', 'mF1', 'mIoU', 'Kappa', '72.73',
                 '58.75', '85.71', 'clutter (not in mean)'):
        assert word in text, word


def test_format_only_saves_predictions(tmp_path):
    metric = ISPRSMetric(output_dir=str(tmp_path), format_only=True)
    metric.dataset_meta = dict(classes=ISPRS_CLASSES)
    s = _sample(PRED1, GT1).to_dict()
    metric.process({}, [s])
    assert metric.results == []
    assert (tmp_path / 'tile.png').exists()
    assert metric.compute_metrics([]) == {}


# ---------------------------------------------------------------- #
# distributed evaluation: 2 gloo processes, results collected by mmengine
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_worker(rank, world_size, port, pairs, queue):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        metric = ISPRSMetric(foreground_classes=[0, 1], precision=None)
        evaluator = Evaluator(metric)
        evaluator.dataset_meta = dict(classes=('a', 'b', 'clutter'))
        # mmengine's DefaultSampler: rank r gets indices r, r + ws, ...,
        # padded by repeating the first ones so every rank has the same
        # number of samples; collect_results drops the padding by `size`.
        n = len(pairs)
        per_rank = math.ceil(n / world_size)
        indices = list(range(n)) * 2
        indices = indices[:per_rank * world_size][rank::world_size]
        for i in indices:
            evaluator.process([_sample(*pairs[i])])
        res = evaluator.evaluate(n)
        queue.put((rank, res))
    finally:
        dist.destroy_process_group()


def test_distributed_matches_single_process():
    pairs = [(PRED1, GT1), (PRED2, GT2), (PRED2, GT2)]  # 3 samples, 2 ranks
    single, _ = _evaluate(pairs, ('a', 'b', 'clutter'),
                          foreground_classes=[0, 1], precision=None)
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    mp.start_processes(
        _dist_worker,
        args=(2, _free_port(), pairs, queue),
        nprocs=2,
        join=True,
        start_method='spawn')
    results = dict(queue.get(timeout=60) for _ in range(2))
    for rank in (0, 1):
        assert results[rank].keys() == single.keys()
        for key, value in single.items():
            assert results[rank][key] == pytest.approx(value), (rank, key)
