from . import transforms  # noqa: F401
from .deliver import DELIVER_CLASSES, DELIVER_PALETTE, DELIVERDataset
from .dfc2023 import DFC2023_CLASSES, DFC2023MMDataset
from .isprs import ISPRS_CLASSES, ISPRS_PALETTE, ISPRSMMDataset
from .mmhunan import MMHUNAN_CLASSES, MMHUNAN_PALETTE, MMHunanDataset
from .multimodal_dataset import MultiModalSegDataset
from .potsdam import PotsdamMMDataset
from .scene_dataset import SceneDataset
from .synthetic import SyntheticMMDataset, generate_synthetic_dataset
from .vaihingen import VaihingenMMDataset

__all__ = [
    'MultiModalSegDataset', 'ISPRSMMDataset', 'ISPRS_CLASSES',
    'ISPRS_PALETTE', 'VaihingenMMDataset', 'PotsdamMMDataset',
    'SyntheticMMDataset', 'generate_synthetic_dataset', 'MMHunanDataset',
    'MMHUNAN_CLASSES', 'MMHUNAN_PALETTE', 'DFC2023MMDataset',
    'DFC2023_CLASSES', 'DELIVERDataset', 'DELIVER_CLASSES', 'DELIVER_PALETTE',
    'SceneDataset'
]
