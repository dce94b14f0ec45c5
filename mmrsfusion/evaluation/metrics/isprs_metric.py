"""The ISPRS 2D semantic labelling evaluation protocol as an mmseg metric.

Protocol: one confusion matrix over the whole
test set with ignore pixels excluded; overall accuracy over all classes
(clutter included); per-class F1 = 2TP / (2TP + FP + FN) and
IoU = TP / (TP + FP + FN); mF1 and mIoU as the mean over the foreground
classes only (clutter excluded); Cohen's Kappa over all classes.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from mmrsfusion.io import write_png


#: Default foreground classes: the first five ISPRS indices (impervious
#: surfaces, building, low vegetation, tree, car); clutter (5) is excluded.
FOREGROUND = (0, 1, 2, 3, 4)


@METRICS.register_module()
class ISPRSMetric(IoUMetric):
    """ISPRS metric: OA, per-class F1 / IoU, foreground mF1 / mIoU, Kappa.

    Each test sample contributes its own ``(num_classes, num_classes)``
    confusion matrix (rows: ground truth, columns: prediction; int64), kept
    one per sample in ``self.results`` so that mmengine's distributed
    collection drops the samples the sampler padded. :meth:`compute_metrics`
    sums them into ONE matrix over the test set and derives every number
    from that single matrix: the per-class intersection / union / predicted
    / ground-truth areas are handed to mmseg's
    :meth:`IoUMetric.total_area_to_metrics` (``IoU`` and ``Dice``; Dice is
    exactly the F1 score 2TP / (2TP + FP + FN)), OA is its trace over its sum
    and Kappa comes from its marginals. Counting in int64 (then float64)
    keeps the counts exact on Potsdam-sized test sets, where float32
    histograms would lose pixels beyond 2**24.

    Pixels whose label equals ``ignore_index`` (the black boundary pixels of
    the eroded ISPRS labels) are excluded; like mmseg's ``IoUMetric``, label
    values outside ``[0, num_classes)`` are excluded as well.

    Classes absent from both the prediction and the ground truth of the
    whole test set have 0 / 0 F1 and IoU: they are reported as NaN and left
    out of mF1 / mIoU (``nanmean``), rather than counted as 0 or 100. A class
    present in the ground truth but never predicted (or the reverse) scores
    0. If every foreground class is absent, mF1 and mIoU are NaN. Kappa is
    defined as 100 when prediction and ground truth are the same single
    class (expected agreement 1). OA and Kappa are NaN when no pixel is
    evaluated.

    All returned values are percentages (Kappa included, x100), rounded to
    ``precision`` decimals like mmseg's metrics. The per-class results and a
    summary are printed as tables through the current mmengine logger.

    Args:
        ignore_index (int): Label value excluded from evaluation.
            Defaults to 255.
        foreground_classes (Sequence[int | str]): Classes averaged into mF1
            and mIoU, as indices or names from ``dataset_meta['classes']``.
            Defaults to the first five indices (the ISPRS foreground classes
            impervious surfaces, building, low vegetation, tree, car; clutter
            is index 5).
        precision (int, optional): Decimals of the returned values; ``None``
            returns them unrounded. Defaults to 2.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        output_dir (str, optional): If set, each predicted label map is saved
            there as ``{basename}.png`` (class indices, as in mmseg, in a
            palette PNG coloured with ``dataset_meta['palette']``).
        format_only (bool): Only save predictions (for a test set without
            ground truth); no evaluation. Defaults to False.
        prefix (str, optional): Prefix of the metric names.

    Returns of :meth:`compute_metrics` (keys): ``'OA'``, ``'mF1'``,
    ``'mIoU'``, ``'Kappa'``, and ``'F1.<class>'`` / ``'IoU.<class>'`` for
    every class (clutter included, so it can be inspected).
    """

    def __init__(self,
                 ignore_index: int = 255,
                 foreground_classes: Sequence[Union[int, str]] = FOREGROUND,
                 precision: Optional[int] = 2,
                 collect_device: str = 'cpu',
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(
            ignore_index=ignore_index,
            iou_metrics=['mIoU', 'mDice'],
            collect_device=collect_device,
            output_dir=output_dir,
            format_only=format_only,
            prefix=prefix,
            **kwargs)
        if isinstance(foreground_classes, (int, str)):
            foreground_classes = [foreground_classes]
        if len(foreground_classes) == 0:
            raise ValueError('ISPRSMetric: foreground_classes must name at '
                             'least one class')
        self.foreground_classes = list(foreground_classes)
        self.precision = precision
        #: The summed confusion matrix of the last :meth:`compute_metrics`
        #: call (rows: ground truth, columns: prediction), main process only.
        self.confusion_matrix: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ #
    @staticmethod
    def confusion(pred_label: torch.Tensor, label: torch.Tensor,
                  num_classes: int, ignore_index: int) -> torch.Tensor:
        """Confusion matrix of one sample.

        Args:
            pred_label (Tensor): Predicted class indices, shape (H, W).
            label (Tensor): Ground-truth class indices, shape (H, W).
            num_classes (int): Number of classes.
            ignore_index (int): Label value to exclude.

        Returns:
            Tensor: int64 matrix of shape (num_classes, num_classes) on the
            CPU; entry ``[t, p]`` counts pixels of true class ``t`` predicted
            as ``p``. Its diagonal, row sums and column sums are the
            ``area_intersect``, ``area_label`` and ``area_pred_label`` of
            :meth:`IoUMetric.intersect_and_union`.
        """
        label = label.long()
        pred_label = pred_label.long()
        mask = (label != ignore_index) & (label >= 0) & (label < num_classes)
        label, pred_label = label[mask], pred_label[mask]
        if pred_label.numel() and (pred_label.min() < 0
                                   or pred_label.max() >= num_classes):
            raise ValueError(
                f'ISPRSMetric: predicted class indices must lie in '
                f'[0, {num_classes}), got values in '
                f'[{int(pred_label.min())}, {int(pred_label.max())}]')
        cm = torch.bincount(
            label * num_classes + pred_label, minlength=num_classes**2)
        return cm.reshape(num_classes, num_classes).cpu()

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Append one confusion matrix per sample to ``self.results``.

        Args:
            data_batch (dict): A batch of data from the dataloader (unused).
            data_samples (Sequence[dict]): The model outputs, each with
                ``pred_sem_seg`` and (unless ``format_only``) ``gt_sem_seg``.
        """
        num_classes = len(self.dataset_meta['classes'])
        for data_sample in data_samples:
            pred_label = data_sample['pred_sem_seg']['data'].squeeze()
            if not self.format_only:
                label = data_sample['gt_sem_seg']['data'].squeeze().to(
                    pred_label.device)
                self.results.append(
                    self.confusion(pred_label, label, num_classes,
                                   self.ignore_index).numpy())
            if self.output_dir is not None:
                basename = osp.splitext(osp.basename(
                    data_sample['img_path']))[0]
                png_filename = osp.abspath(
                    osp.join(self.output_dir, f'{basename}.png'))
                output_mask = pred_label.cpu().numpy()
                if data_sample.get('reduce_zero_label', False):
                    output_mask = output_mask + 1
                # a palette PNG: class indices, shown coloured
                write_png(png_filename, output_mask,
                          self.dataset_meta.get('palette'))

    # ------------------------------------------------------------------ #
    def _foreground_indices(self, class_names: Sequence[str]) -> List[int]:
        indices = []
        for c in self.foreground_classes:
            if isinstance(c, str):
                if c not in class_names:
                    raise ValueError(
                        f'ISPRSMetric: foreground class {c!r} is not one of '
                        f'the dataset classes {tuple(class_names)}')
                c = list(class_names).index(c)
            elif isinstance(c, bool) or not isinstance(c, (int, np.integer)) \
                    or not 0 <= c < len(class_names):
                raise ValueError(
                    f'ISPRSMetric: foreground class {c!r} is not an index in '
                    f'[0, {len(class_names)}) or a class name')
            indices.append(int(c))
        if len(set(indices)) != len(indices):
            raise ValueError('ISPRSMetric: duplicate foreground classes '
                             f'{self.foreground_classes}')
        return indices

    @staticmethod
    def kappa(confusion_matrix: np.ndarray) -> float:
        """Cohen's Kappa (a fraction, not x100) of a confusion matrix."""
        cm = np.asarray(confusion_matrix, dtype=np.float64)
        total = cm.sum()
        if total == 0:
            return float('nan')
        po = np.trace(cm) / total
        pe = float((cm.sum(0) * cm.sum(1)).sum()) / total**2
        if pe == 1.0:  # one class only, in both GT and prediction: po == 1
            return 1.0
        return float((po - pe) / (1 - pe))

    def _round(self, value: float) -> float:
        value = float(value)
        if self.precision is None or np.isnan(value):
            return value
        return round(value, self.precision)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Sum the per-sample confusion matrices and compute the metrics.

        Args:
            results (list[np.ndarray]): One confusion matrix per sample.

        Returns:
            dict[str, float]: ``OA``, ``mF1``, ``mIoU``, ``Kappa``,
            ``F1.<class>``, ``IoU.<class>`` (percentages).
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {osp.dirname(self.output_dir)}')
            return OrderedDict()
        class_names = list(self.dataset_meta['classes'])
        num_classes = len(class_names)
        fg = self._foreground_indices(class_names)

        cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        for r in results:
            cm += np.asarray(r, dtype=np.int64)
        self.confusion_matrix = cm

        # Areas as in IoUMetric.intersect_and_union, from the one matrix.
        cm_t = torch.from_numpy(cm).double()
        area_intersect = torch.diagonal(cm_t)
        area_label = cm_t.sum(1)
        area_pred_label = cm_t.sum(0)
        area_union = area_pred_label + area_label - area_intersect
        with np.errstate(invalid='ignore', divide='ignore'):
            ret = self.total_area_to_metrics(area_intersect, area_union,
                                             area_pred_label, area_label,
                                             ['mIoU', 'mDice'])
        oa = float(ret['aAcc'])  # trace / total, clutter included
        f1, iou = ret['Dice'], ret['IoU']  # Dice == 2TP / (2TP + FP + FN)

        def fg_mean(values: np.ndarray) -> float:
            values = values[fg]
            return float(np.nanmean(values)) if not np.isnan(values).all() \
                else float('nan')

        metrics = OrderedDict()
        metrics['OA'] = self._round(oa * 100)
        metrics['mF1'] = self._round(fg_mean(f1) * 100)
        metrics['mIoU'] = self._round(fg_mean(iou) * 100)
        metrics['Kappa'] = self._round(self.kappa(cm) * 100)
        for i, name in enumerate(class_names):
            metrics[f'F1.{name}'] = self._round(f1[i] * 100)
        for i, name in enumerate(class_names):
            metrics[f'IoU.{name}'] = self._round(iou[i] * 100)

        self._print_tables(metrics, class_names, fg, cm)
        return metrics

    def _print_tables(self, metrics: dict, class_names: List[str],
                      fg: List[int], cm: np.ndarray) -> None:
        logger: MMLogger = MMLogger.get_current_instance()

        def fmt(v):
            return 'nan' if np.isnan(v) else f'{v:.2f}'

        class_table = PrettyTable()
        class_table.add_column('Class', [
            name + ('' if i in fg else ' (not in mean)')
            for i, name in enumerate(class_names)
        ])
        class_table.add_column('F1', [fmt(metrics[f'F1.{n}'])
                                      for n in class_names])
        class_table.add_column('IoU', [fmt(metrics[f'IoU.{n}'])
                                       for n in class_names])
        class_table.add_column('GT pixels', [int(v) for v in cm.sum(1)])
        print_log('per class results:', logger)
        print_log('\n' + class_table.get_string(), logger=logger)

        summary = PrettyTable()
        for key in ('OA', 'mF1', 'mIoU', 'Kappa'):
            summary.add_column(key, [fmt(metrics[key])])
        print_log(
            f'ISPRS summary (mF1/mIoU over {len(fg)} foreground classes; '
            'OA/Kappa over all classes):', logger)
        print_log('\n' + summary.get_string(), logger=logger)
