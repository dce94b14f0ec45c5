"""Running a multimodal pipeline on one sample, its presence packed."""
from typing import Callable, Optional, Sequence

import torch

#: What the loader adds that the visualizer needs to re-read and draw every
#: modality as the model read it, and a scene window's scene and window
#: (for per-scene metrics).
META_KEYS = ('modality_paths', 'modality_bands', 'modalities', 'scene',
             'window')


def run_pipeline(transforms: Sequence[Callable],
                 results: dict,
                 on_loaded: Optional[Callable[[dict], None]] = None
                 ) -> Optional[dict]:
    """Run ``transforms`` on ``results`` as mmcv's ``Compose`` does, and
    give the packed data sample the sample's presence (the loader's
    ``results['presence']``, after any modality dropping) as an (M,) bool
    tensor field ``presence``, and the loader's :data:`META_KEYS` as
    metainfo (for :class:`MultiModalSegLocalVisualizer`; a scene window's
    ``scene`` and ``window`` for :class:`PerSceneMetric`),
    whatever packing transform ends the pipeline.

    Args:
        transforms: Built transforms.
        results (dict): The data info.
        on_loaded (callable, optional): Called once with the results as
            soon as they hold both ``img`` and ``gt_seg_map``.

    Returns:
        dict | None: The packed sample, or None if a transform dropped it.
    """
    presence, meta = None, {}
    for transform in transforms:
        presence = results.get('presence', presence)
        meta.update({k: results[k] for k in META_KEYS if k in results})
        results = transform(results)
        if results is None:
            return None
        if on_loaded is not None and 'gt_seg_map' in results \
                and 'img' in results:
            on_loaded(results)
            on_loaded = None
    sample = results.get('data_samples')
    if presence is not None and sample is not None:
        sample.set_data(dict(presence=torch.tensor(presence)))
    if meta and sample is not None:
        # what the visualizer re-reads to draw every modality; the scene
        # window a per-scene metric groups by
        sample.set_metainfo(meta)
    return results
