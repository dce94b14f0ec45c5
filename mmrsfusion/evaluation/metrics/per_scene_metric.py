"""Any per-sample segmentation metric, overall and per scene."""
from collections import OrderedDict
from typing import Dict, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmseg.registry import METRICS


@METRICS.register_module()
class PerSceneMetric(BaseMetric):
    """A metric (``metric``: mmseg's ``IoUMetric``, :class:`ISPRSMetric`,
    any metric that keeps one result per sample in ``results``) computed
    over the whole test set and over each scene's samples.

    The scene of a sample is its data sample's ``scene_key`` metainfo
    (:class:`~mmrsfusion.datasets.SceneDataset` samples carry ``scene``, the
    scene's name). Each sample is handed to ``metric.process`` alone and its
    result kept with its scene, so that mmengine's collection across ranks
    keeps them together; :meth:`compute_metrics` runs
    ``metric.compute_metrics`` on each scene's results and on all (its
    tables printed under ``scene <name>:`` and ``all scenes:``).

    Args:
        metric (dict): The wrapped metric's config.
        scene_key (str): Metainfo key of the scene. Defaults to ``scene``.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Prefix of the metric names.

    Returns of :meth:`compute_metrics`: the wrapped metric's keys over all
    scenes, then ``<scene>/<key>`` for each scene (in order of first
    appearance).
    """

    def __init__(self,
                 metric: dict,
                 scene_key: str = 'scene',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.metric = METRICS.build(metric)
        self.scene_key = scene_key

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        self.metric.dataset_meta = dataset_meta

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Hand each sample to the wrapped metric; keep its results with
        its scene."""
        for sample in data_samples:
            scene = sample.get(self.scene_key)
            if scene is None:
                raise ValueError(
                    f'PerSceneMetric: a data sample has no {self.scene_key!r}'
                    f' metainfo (SceneDataset samples carry it); its keys '
                    f'are {sorted(sample)}')
            self.metric.process(data_batch, [sample])
            self.results.extend((scene, r) for r in self.metric.results)
            self.metric.results.clear()

    def compute_metrics(self, results: list) -> Dict[str, float]:
        scenes: 'OrderedDict[str, list]' = OrderedDict()
        for scene, result in results:
            scenes.setdefault(scene, []).append(result)
        per_scene = OrderedDict()
        for scene, scene_results in scenes.items():
            print_log(f'scene {scene}:', logger='current')
            for key, value in self.metric.compute_metrics(
                    scene_results).items():
                per_scene[f'{scene}/{key}'] = value
        print_log('all scenes:', logger='current')
        metrics = OrderedDict(self.metric.compute_metrics(
            [result for _, result in results]))
        metrics.update(per_scene)
        return metrics
