"""Training-time modality dropout: a sample made to lack some modalities."""
from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from mmrsfusion.utils import ModalitySpec


@TRANSFORMS.register_module()
class RandomModalityDrop(BaseTransform):
    """Randomly make some modalities of a sample absent (training).

    With probability ``prob`` the sample keeps a random non-empty subset of
    the modalities it has, drawn uniformly among the proper non-empty
    subsets of its present modalities (a sample with one modality is left
    alone); only ``results['presence']`` changes: the segmentor zeroes the
    absent channels (after normalisation) and a mask-aware model leaves
    them out, exactly as for a modality the sample never had.

    Place it after :class:`LoadMultiModalImageFromFiles` (which sets
    ``presence``).

    Args:
        modalities (ModalitySpec | list[dict]): The modality spec (the
            dataset hands its own down).
        prob (float): Probability of dropping anything. Defaults to 0.5.
        droppable (Sequence[str], optional): Names of the modalities that
            may be dropped; default all.
    """

    def __init__(self,
                 modalities: Union[ModalitySpec, Sequence[dict]],
                 prob: float = 0.5,
                 droppable: Optional[Sequence[str]] = None) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomModalityDrop.prob: expected a value in '
                             f'[0, 1], got {prob!r}')
        self.modalities = ModalitySpec.build(
            modalities, 'RandomModalityDrop.modalities')
        self.prob = prob
        self.droppable = self.modalities.names if droppable is None else \
            self.modalities.check_names(droppable,
                                        'RandomModalityDrop.droppable')

    def transform(self, results: dict) -> dict:
        names = self.modalities.names
        presence = list(results.get('presence', (True, ) * len(names)))
        present = [i for i, p in enumerate(presence) if p]
        fixed = [i for i in present if names[i] not in self.droppable]
        free = [i for i in present if i not in fixed]
        if len(present) < 2 or not free or np.random.rand() >= self.prob:
            results['presence'] = tuple(presence)
            return results
        # keep-masks over the free modalities: a proper subset of present,
        # non-empty overall
        choices = [
            bits for bits in range(2**len(free))
            if (bits or fixed) and bits != 2**len(free) - 1
        ]
        bits = choices[np.random.randint(len(choices))]
        for j, i in enumerate(free):
            if not bits >> j & 1:
                presence[i] = False
        results['presence'] = tuple(presence)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'droppable={self.droppable})')
