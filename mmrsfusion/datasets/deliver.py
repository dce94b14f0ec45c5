"""DELIVER (Zhang et al., CVPR 2023): RGB, Depth, Event and LiDAR of a
simulated driving scene, 25 classes (SGMA's fourth benchmark)."""
from mmseg.registry import DATASETS

from .multimodal_dataset import MultiModalSegDataset

#: Class names, index = label value (0..24), in the authors' order.
DELIVER_CLASSES = ('Building', 'Fence', 'Other', 'Pedestrian', 'Pole',
                   'RoadLine', 'Road', 'SideWalk', 'Vegetation', 'Cars',
                   'Wall', 'TrafficSign', 'Sky', 'Ground', 'Bridge',
                   'RailTrack', 'GroundRail', 'TrafficLight', 'Static',
                   'Dynamic', 'Water', 'Terrain', 'TwoWheeler', 'Bus',
                   'Truck')
#: The authors' colour of each class (RGB).
DELIVER_PALETTE = [[70, 70, 70], [100, 40, 40], [55, 90, 80], [220, 20, 60],
                   [153, 153, 153], [157, 234, 50], [128, 64, 128],
                   [244, 35, 232], [107, 142, 35], [0, 0, 142],
                   [102, 102, 156], [220, 220, 0], [70, 130, 180],
                   [81, 0, 81], [150, 100, 100], [230, 150, 140],
                   [180, 165, 180], [250, 170, 30], [110, 190, 160],
                   [170, 120, 50], [45, 60, 150], [145, 170, 100],
                   [0, 0, 230], [0, 60, 100], [0, 0, 70]]


@DATASETS.register_module()
class DELIVERDataset(MultiModalSegDataset):
    """DELIVER in the layout written by
    ``tools/dataset_converters/deliver.py``::

        data_root/{img,depth,event,lidar}_dir/{train,val,test}/STEM.png
        data_root/ann_dir/{train,val,test}/STEM.png   0..24, 255 ignored

    (8-bit, 3 channels each; the event frame resized to the RGB size).
    Labels are index maps already shifted by the converter, so
    ``reduce_zero_label`` is False. See :class:`MultiModalSegDataset`.
    """
    MAKE_COMMAND = 'mmrsfusion convert deliver RAW -o {root}'
    METAINFO = dict(classes=DELIVER_CLASSES, palette=DELIVER_PALETTE)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
