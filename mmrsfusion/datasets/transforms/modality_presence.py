"""Training-time modality dropout and packing of the presence mask."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS
from mmrsfusion.utils import PRESENCE_KEY, parse_modalities


@TRANSFORMS.register_module()
class RandomModalityDrop(BaseTransform):
    """Randomly make some modalities of a sample absent (training).

    With probability ``prob`` the sample keeps a random non-empty subset of
    the modalities it has, drawn uniformly among the proper non-empty
    subsets of its present modalities (a sample with one modality is left
    alone); ``modality_presence`` is updated and the dropped channels of
    ``img`` are set to 0 (the data preprocessor zeroes them again after
    normalisation, so the model sees exactly an absent modality).

    Place it after :class:`LoadMultiModalImageFromFiles` (which provides
    ``modalities`` and ``modality_presence``) and before the packing.

    Args:
        prob (float): Probability of dropping anything. Defaults to 0.5.
        droppable (Sequence[str], optional): Names of the modalities that
            may be dropped; default all.
    """

    def __init__(self, prob: float = 0.5,
                 droppable: Optional[Sequence[str]] = None) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomModalityDrop.prob: expected a value in '
                             f'[0, 1], got {prob!r}')
        self.prob = prob
        self.droppable = None if droppable is None else tuple(droppable)

    def transform(self, results: dict) -> dict:
        if 'modalities' not in results:
            raise KeyError('RandomModalityDrop: results has no '
                           "'modalities'; put it after "
                           'LoadMultiModalImageFromFiles')
        mods = parse_modalities(results['modalities'])
        names = [m.name for m in mods]
        if self.droppable is not None:
            unknown = set(self.droppable) - set(names)
            if unknown:
                raise ValueError(f'RandomModalityDrop.droppable: unknown '
                                 f'modalities {sorted(unknown)}; the spec '
                                 f'has {names}')
        presence = list(results.get(PRESENCE_KEY, (True, ) * len(mods)))
        present = [i for i, p in enumerate(presence) if p]
        fixed = [i for i in present if self.droppable is not None
                 and names[i] not in self.droppable]
        free = [i for i in present if i not in fixed]
        if len(present) < 2 or not free or np.random.rand() >= self.prob:
            results[PRESENCE_KEY] = tuple(presence)
            return results
        # keep-masks over the free modalities: a proper subset of present,
        # non-empty overall
        choices = [
            bits for bits in range(2**len(free))
            if (bits or fixed) and bits != 2**len(free) - 1
        ]
        bits = choices[np.random.randint(len(choices))]
        img = results['img']
        for j, i in enumerate(free):
            if not bits >> j & 1:
                presence[i] = False
                img[..., mods[i].slice] = 0
        results[PRESENCE_KEY] = tuple(presence)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'droppable={self.droppable})')


@TRANSFORMS.register_module()
class PackMultiModalSegInputs(PackSegInputs):
    """mmseg's :class:`PackSegInputs` that also packs
    ``modality_presence`` into the data sample's metainfo (when the results
    have it), so the data preprocessor and mask-aware models see it."""

    def __init__(self, meta_keys: Optional[Sequence[str]] = None) -> None:
        # None: mmseg's default meta keys
        super().__init__(
            **({} if meta_keys is None else dict(meta_keys=meta_keys)))
        if PRESENCE_KEY not in self.meta_keys:
            self.meta_keys = tuple(self.meta_keys) + (PRESENCE_KEY, )
