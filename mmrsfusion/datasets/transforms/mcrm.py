"""Per-sample MCRM: random region masking of one modality in the pipeline."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from mmrsfusion.models.batch_augments.mcrm import (FillValue, check_range,
                                                   rect_size, resolve_fill,
                                                   resolve_targets)
from mmrsfusion.utils import total_channels


@TRANSFORMS.register_module()
class MCRMTransform(BaseTransform):
    """Mask random rectangles of one modality of a sample, with a
    probability: the pipeline counterpart of the batch augmentation
    :class:`mmrsfusion.models.batch_augments.MCRM`.

    With probability ``prob`` the sample is masked in exactly one modality,
    drawn uniformly from ``mask_modalities`` (so the split is balanced in
    expectation and no sample loses all its modalities): ``num_rects``
    rectangles, each covering a fraction ``~ U(area_range)`` of the image
    with ``width / height ~ U(aspect_range)`` at a uniform position, are set
    to ``fill_value`` in that modality's channels. Randomness comes from
    ``numpy.random`` (seeded per worker by the runner).

    Note that a pipeline runs before the data preprocessor's normalisation:
    ``fill_value`` is in the units of the loaded arrays. To reproduce
    MoBaNet's "0 after normalisation", fill the optical modality with its
    mean, e.g. ``fill_value=dict(rgb=[123.675, 116.28, 103.53])``.

    Required keys: ``img`` (H, W, C_total) float array. Modified keys:
    ``img`` (a new array; the input array is not written to).

    Args:
        modalities (list[dict]): The modality spec.
        prob (float): Probability of masking a sample. Defaults to 0.25.
        num_rects (int): Rectangles per masked sample. Defaults to 1.
        area_range (tuple[float]): Defaults to (0.1, 0.3).
        aspect_range (tuple[float]): Defaults to (0.5, 2.0).
        fill_value (float | list[float] | dict): A number, one value per
            channel, or a dict from modality name to either (missing
            names: 0). Defaults to 0.
        mask_modalities (list[str], optional): Names of the modalities that
            may be masked (at least 2). Defaults to all of the spec.
    """

    def __init__(self,
                 modalities: Sequence[dict],
                 prob: float = 0.25,
                 num_rects: int = 1,
                 area_range: Sequence[float] = (0.1, 0.3),
                 aspect_range: Sequence[float] = (0.5, 2.0),
                 fill_value: FillValue = 0.,
                 mask_modalities: Optional[Sequence[str]] = None):
        if not 0 <= prob <= 1:
            raise ValueError(f'MCRMTransform.prob: expected a value in '
                             f'[0, 1], got {prob!r}')
        if num_rects < 1:
            raise ValueError(f'MCRMTransform.num_rects: expected >= 1, got '
                             f'{num_rects!r}')
        self.targets = resolve_targets(modalities, mask_modalities,
                                       'MCRMTransform')
        self.num_channels = total_channels(modalities)
        self.prob = prob
        self.num_rects = num_rects
        self.area_range = check_range('MCRMTransform.area_range', area_range,
                                      0, 1)
        self.aspect_range = check_range('MCRMTransform.aspect_range',
                                        aspect_range, 1e-6, float('inf'))
        self.fills = {
            m.name: np.asarray(resolve_fill(fill_value, m, 'MCRMTransform'))
            for m in self.targets
        }

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 3 or img.shape[2] != self.num_channels:
            raise ValueError(f'MCRMTransform: expected an (H, W, '
                             f'{self.num_channels}) image, got shape '
                             f'{img.shape}')
        for name, fill in self.fills.items():
            if not np.array_equal(np.asarray(fill).astype(img.dtype), fill):
                raise TypeError(
                    f'MCRMTransform: fill value {fill} of {name!r} does not '
                    f'fit the {img.dtype} image; use a float image (as '
                    'LoadMultiModalImageFromFiles gives) or integer fills')
        if np.random.rand() >= self.prob:
            return results
        mod = self.targets[np.random.randint(len(self.targets))]
        height, width = img.shape[:2]
        img = img.copy()
        for _ in range(self.num_rects):
            h, w = rect_size(height, width,
                             np.random.uniform(*self.area_range),
                             np.random.uniform(*self.aspect_range))
            top = np.random.randint(height - h + 1)
            left = np.random.randint(width - w + 1)
            img[top:top + h, left:left + w, mod.slice] = self.fills[mod.name]
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'modalities={[m.name for m in self.targets]}, '
                f'prob={self.prob}, num_rects={self.num_rects}, '
                f'area_range={self.area_range}, '
                f'aspect_range={self.aspect_range})')
