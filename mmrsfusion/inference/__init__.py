"""Whole-scene mapping of rasters (:mod:`.scene_inference`, needs
``rasterio``: imported on demand). The batched sliding windows it shares
with the segmentors' slide mode are in :mod:`mmrsfusion.models.utils`."""
