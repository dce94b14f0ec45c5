from .modality import (KINDS, Modality, parse_modalities, split_modalities,
                       total_channels)

__all__ = [
    'KINDS', 'Modality', 'parse_modalities', 'split_modalities',
    'total_channels'
]
