"""IEEE GRSS DFC2023 track 2 (RGB + DSM + SAR, building footprints), in
SGMA's use: binary building segmentation from three modalities."""
from mmseg.registry import DATASETS

from .multimodal_dataset import MultiModalSegDataset

DFC2023_CLASSES = ('background', 'building')
DFC2023_PALETTE = [[0, 0, 0], [255, 255, 255]]


@DATASETS.register_module()
class DFC2023MMDataset(MultiModalSegDataset):
    """DFC2023 track 2 in the converted layout written by
    ``tools/dataset_converters/dfc2023.py``::

        data_root/img_dir/{train,val}/STEM.tif   RGB (3 bands, as given)
        data_root/dsm_dir/{train,val}/STEM.tif   DSM (float32, as given)
        data_root/sar_dir/{train,val}/STEM.tif   SAR (as given)
        data_root/ann_dir/{train,val}/STEM.png   0 background, 1 building

    Labels are index maps (``reduce_zero_label`` False). See
    :class:`MultiModalSegDataset` for the options (e.g. ``allow_missing``).
    """
    MAKE_COMMAND = 'mmrsfusion convert dfc2023 RAW -o {root}'
    METAINFO = dict(classes=DFC2023_CLASSES, palette=DFC2023_PALETTE)

    def __init__(self, reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(reduce_zero_label=reduce_zero_label, **kwargs)
