"""ISPRS 2-D semantic labelling classes, shared by the ISPRS-like datasets."""
from mmseg.registry import DATASETS

from .multimodal_dataset import MultiModalSegDataset

#: Class names, index = label value (0..5); 255 = ignore (eroded borders).
ISPRS_CLASSES = ('impervious_surface', 'building', 'low_vegetation', 'tree',
                 'car', 'clutter')
#: The official colour code (RGB) of each class.
ISPRS_PALETTE = [[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0],
                 [255, 255, 0], [255, 0, 0]]


@DATASETS.register_module()
class ISPRSMMDataset(MultiModalSegDataset):
    """Multimodal dataset with the 6 ISPRS classes and palette.

    Labels are index maps 0..5 (clutter = 5, kept: the ISPRS protocol counts
    it in OA), 255 = ignore; so ``reduce_zero_label`` is False.
    """
    METAINFO = dict(classes=ISPRS_CLASSES, palette=ISPRS_PALETTE)

    def __init__(self, reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(reduce_zero_label=reduce_zero_label, **kwargs)
