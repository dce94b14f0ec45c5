"""Writing a PNG atomically: class indices with a palette, or an RGB
picture."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from PIL import Image


def write_png(path: str, array: np.ndarray,
              palette: Optional[Sequence[Sequence[int]]] = None) -> None:
    """Write ``array`` to the PNG ``path`` (its folder created), through a
    temporary file renamed into place, so that ``path`` is either absent
    or complete.

    Args:
        path (str): The PNG file.
        array (np.ndarray): (H, W) class indices (0-255) or (H, W, 3) uint8
            RGB.
        palette (list[list[int]], optional): Per class an (R, G, B); with
            (H, W) indices, a palette PNG (the indices, shown coloured).
    """
    image = Image.fromarray(np.ascontiguousarray(array.astype(np.uint8)))
    if palette and array.ndim == 2:
        image.putpalette(np.asarray(palette, np.uint8).ravel())
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp')
    try:
        image.save(tmp, format='PNG')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
