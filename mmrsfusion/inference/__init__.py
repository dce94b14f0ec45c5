"""Inference beyond mmseg's: batched sliding windows (used by the
segmentors' slide mode) and whole-scene mapping of rasters
(:mod:`mmrsfusion.inference.scene`, needs ``rasterio``: imported on
demand)."""
from .sliding_window import (Window, accumulate_windows, slide_windows,
                             window_spans)

__all__ = ['Window', 'accumulate_windows', 'slide_windows', 'window_spans']
