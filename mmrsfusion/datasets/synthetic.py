"""A synthetic ISPRS-like multimodal dataset (optical + DSM), written as
real files in the converted layout, and its dataset class.

The scenes are built so that neither modality alone separates the six
ISPRS classes, but the two together do:

==================  ===================================  =================
class               optical                              height (DSM)
==================  ===================================  =================
impervious (roads)  grey                                 ground
building            grey (same distribution as roads)    high (6-14 m)
low vegetation      green                                ground (= roads)
tree                green, darker and rougher            mid-high (dome)
car                 bright 20-26 x 8-10 px, on roads     slightly raised
clutter             brown patches                        ground to 2.5 m
==================  ===================================  =================

So optical confuses roofs with roads, DSM confuses roads with low
vegetation; on top, per-object colour and height jitter, a smooth
illumination field, pixel noise, a sloping terrain, tree roughness and a few
no-data (-9999) DSM pixels keep single pixel values from being decisive.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Sequence, Tuple, Union

import cv2
import numpy as np
import tifffile

from mmseg.registry import DATASETS

from .isprs import ISPRSMMDataset

IMPERVIOUS, BUILDING, LOW_VEG, TREE, CAR, CLUTTER = range(6)
IGNORE = 255
NODATA = -9999.
#: Bumped whenever the generated content changes for a given seed.
GENERATOR_VERSION = 3
#: Car length range in pixels, whatever the tile size, and length / breadth.
#: Sized to the demo ViT's 8-pixel patches as Potsdam cars are to DINOv2's
#: 14-pixel ones: a car there (5 cm pixels, about 4.5 x 1.8 m) is 90 x 36
#: pixels, length / breadth 2.5, more than 2 patches across. Here cars are
#: 20-26 x 8-10 pixels: 2.5-3.25 patches long and never narrower than one
#: patch (the 10 x 5 pixel cars of version 2 were, and lost most of their
#: pixels to eroded labels). Real proportions (50 x 20) would fill 40 % of a
#: 128-pixel training tile and not fit on its roads.
CAR_LENGTH_PX = (20, 26)
CAR_ASPECT = 2.5
META_FILE = 'meta.json'

_GREY = (95., 160.)  # grey level range of roads AND roofs
_LOW_VEG_RGB = np.array([95., 135., 65.])
_TREE_RGB = np.array([78., 120., 56.])
_CLUTTER_RGB = np.array([155., 100., 75.])
_CAR_RGB = np.array([[215., 45., 40.], [45., 75., 205.], [235., 235., 230.],
                     [230., 200., 45.]])

Size = Union[int, Sequence[int]]


def _hw(size: Size, name: str) -> Tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 32 or w < 32:
        raise ValueError(f'{name}: expected sides >= 32, got {size!r}')
    return int(h), int(w)


def _smooth(rng: np.random.Generator, h: int, w: int,
            cells: int = 4) -> np.ndarray:
    """A smooth random field of about unit amplitude."""
    low = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)


def _free(label: np.ndarray, y0: int, y1: int, x0: int, x1: int,
          allowed: Sequence[int], margin: int = 0) -> bool:
    h, w = label.shape
    region = label[max(y0 - margin, 0):min(y1 + margin, h),
                   max(x0 - margin, 0):min(x1 + margin, w)]
    return region.size > 0 and bool(np.isin(region, allowed).all())


def synthesize_tile(rng: np.random.Generator, height: int,
                    width: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one scene.

    Returns:
        tuple: ``rgb`` (H, W, 3) uint8, ``dsm`` (H, W) float32 absolute
        heights in metres with a few ``-9999`` no-data pixels, ``label``
        (H, W) uint8 class indices 0..5.
    """
    h, w = height, width
    s = min(h, w)
    label = np.full((h, w), LOW_VEG, np.uint8)
    above = np.zeros((h, w), np.float32)  # height above ground, metres
    colour = np.empty((h, w, 3), np.float32)
    colour[:] = _LOW_VEG_RGB + rng.uniform(-15, 15, 3)
    texture = np.full((h, w), 14., np.float32)  # per-pixel noise std

    def grey() -> np.ndarray:
        return rng.uniform(*_GREY) + rng.uniform(-4, 4, 3)

    # roads (strips) and a plaza: grey, on the ground
    for axis in (0, 1):
        for _ in range(rng.integers(1, 3)):
            width_px = int(rng.integers(round(0.10 * s), round(0.16 * s) + 1))
            extent = (h, w)[axis]
            start = int(rng.integers(0, max(extent - width_px, 1)))
            sl = (slice(start, start + width_px), slice(None))[::1 - 2 * axis]
            label[sl] = IMPERVIOUS
            colour[sl] = grey()
    if rng.random() < 0.5:
        ph, pw = (int(rng.integers(round(0.12 * s), round(0.25 * s))), ) * 2
        y, x = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
        label[y:y + ph, x:x + pw] = IMPERVIOUS
        colour[y:y + ph, x:x + pw] = grey()

    # buildings: grey roofs like the roads, high, gabled
    placed, wanted = 0, rng.integers(2, 6)
    for _ in range(60):
        if placed >= wanted:
            break
        bh = int(rng.integers(round(0.12 * s), round(0.32 * s)))
        bw = int(rng.integers(round(0.12 * s), round(0.32 * s)))
        y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        if not _free(label, y, y + bh, x, x + bw, [LOW_VEG], margin=2):
            continue
        label[y:y + bh, x:x + bw] = BUILDING
        colour[y:y + bh, x:x + bw] = grey()
        eaves, ridge = rng.uniform(4, 12), rng.uniform(0.5, 2.5)
        if bh < bw:  # ridge along the longer side
            t = np.abs(np.linspace(-1, 1, bh, dtype=np.float32))[:, None]
        else:
            t = np.abs(np.linspace(-1, 1, bw, dtype=np.float32))[None, :]
        above[y:y + bh, x:x + bw] = eaves + ridge * (1 - t)
        placed += 1

    # clutter: brown patches on the ground or low vegetation
    for _ in range(rng.integers(2, 5)):
        ch = int(rng.integers(round(0.06 * s), round(0.14 * s) + 1))
        cw = int(rng.integers(round(0.06 * s), round(0.14 * s) + 1))
        y, x = int(rng.integers(0, h - ch)), int(rng.integers(0, w - cw))
        if not _free(label, y, y + ch, x, x + cw, [LOW_VEG, IMPERVIOUS]):
            continue
        label[y:y + ch, x:x + cw] = CLUTTER
        colour[y:y + ch, x:x + cw] = _CLUTTER_RGB + rng.uniform(-12, 12, 3)
        above[y:y + ch, x:x + cw] = rng.uniform(0, 2.5)
        texture[y:y + ch, x:x + cw] = 16.

    # trees: green like low vegetation (a bit darker, rougher), dome-shaped
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    placed, wanted = 0, rng.integers(3, 11)
    for _ in range(40):
        if placed >= wanted:
            break
        r = rng.uniform(0.03 * s, 0.08 * s)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        if label[int(cy), int(cx)] != LOW_VEG:
            continue
        d = np.sqrt((yy - cy)**2 + (xx - cx)**2) / r
        disc = (d < 1) & np.isin(label, [LOW_VEG, TREE])
        crown = rng.uniform(4, 11) * np.sqrt(np.clip(1 - d**2, 0, 1))
        label[disc] = TREE
        colour[disc] = _TREE_RGB + rng.uniform(-10, 10, 3)
        above[disc] = np.maximum(above[disc], crown[disc] + 0.3)
        texture[disc] = 22.
        placed += 1

    # cars: small bright blobs on impervious surfaces, slightly raised
    placed, wanted = 0, rng.integers(3, 9)
    for _ in range(60):
        road = np.argwhere(label == IMPERVIOUS)
        if placed >= wanted or not len(road):
            break
        length = int(rng.integers(*CAR_LENGTH_PX, endpoint=True))
        breadth = int(round(length / CAR_ASPECT))
        ch, cw = (length, breadth) if rng.random() < 0.5 else (breadth,
                                                              length)
        y, x = road[rng.integers(len(road))]
        y, x = int(min(y, h - ch)), int(min(x, w - cw))
        if not _free(label, y, y + ch, x, x + cw, [IMPERVIOUS], margin=1):
            continue
        label[y:y + ch, x:x + cw] = CAR
        colour[y:y + ch, x:x + cw] = _CAR_RGB[rng.integers(
            len(_CAR_RGB))] + rng.uniform(-15, 15, 3)
        above[y:y + ch, x:x + cw] = rng.uniform(1.2, 1.8)
        placed += 1

    # optical: soften edges, illumination, texture noise
    colour = cv2.GaussianBlur(colour, (0, 0), 0.6)
    colour *= (1 + 0.12 * _smooth(rng, h, w))[..., None]
    colour += rng.standard_normal((h, w, 3)).astype(np.float32) * \
        texture[..., None]
    rgb = np.clip(np.rint(colour), 0, 255).astype(np.uint8)

    # DSM: sloping, undulating terrain + objects + noise + a few no-data
    gy, gx = rng.uniform(-3, 3, 2) / s
    ground = (rng.uniform(250, 300) + gy * yy + gx * xx +
              1.0 * _smooth(rng, h, w, cells=3))
    rough = np.where(label == TREE, 0.8, 0.35).astype(np.float32)
    dsm = ground + above + rng.standard_normal((h, w)).astype(
        np.float32) * rough
    dsm = dsm.astype(np.float32)
    flat = rng.choice(h * w, size=int(rng.integers(3, 10)), replace=False)
    dsm.reshape(-1)[flat] = NODATA
    if rng.random() < 0.5:
        y, x = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        dsm[y:y + 3, x:x + 3] = NODATA
    return rgb, dsm, label


#: Mean NIR reflectance (0-255) per class of the optional third modality:
#: roofs and roads differ (what RGB cannot tell), and so do trees and low
#: vegetation, a little; cars and clutter sit in between.
_NIR_LEVEL = np.array([70., 150., 200., 185., 110., 125.], np.float32)
#: Class levels of the optional DELIVER-like Event and LiDAR bands (four
#: modalities with RGB and DSM): each separates other class pairs, weakly.
_EVENT_LEVEL = np.array([90., 120., 100., 160., 200., 140.], np.float32)
_LIDAR_LEVEL = np.array([60., 190., 80., 150., 120., 100.], np.float32)


def synthesize_nir(rng: np.random.Generator,
                   label: np.ndarray,
                   levels: np.ndarray = _NIR_LEVEL) -> np.ndarray:
    """A NIR band (or another band, given its ``levels`` per class)
    carrying its own class evidence.

    Class levels from ``levels`` with per-tile jitter, a smooth gain
    field and strong pixel noise, so NIR alone separates buildings from
    roads (which RGB confuses) but only weakly trees from low vegetation
    (which the DSM separates): each modality adds something.

    Returns:
        ndarray: (H, W) uint8.
    """
    h, w = label.shape
    nir = levels[label] + rng.uniform(-10, 10, len(levels))[label]
    nir = cv2.GaussianBlur(nir, (0, 0), 0.8)
    nir *= 1 + 0.1 * _smooth(rng, h, w)
    nir += rng.standard_normal((h, w)).astype(np.float32) * 18.
    return np.clip(np.rint(nir), 0, 255).astype(np.uint8)


def erode_labels(label: np.ndarray, radius: int = 1) -> np.ndarray:
    """ISPRS-style eroded labels: pixels within ``radius`` of a class
    boundary become 255 (ignored)."""
    if radius <= 0:
        return label.copy()
    kernel = np.ones((2 * radius + 1, ) * 2, np.uint8)
    border = cv2.dilate(label, kernel) != cv2.erode(label, kernel)
    out = label.copy()
    out[border] = IGNORE
    return out


def _write_split(root: str, split: str, num: int, size: Tuple[int, int],
                 seed: int, split_id: int, erosion_radius: int,
                 nir: bool = False, deliver: bool = False) -> None:
    bands = dict(nir=_NIR_LEVEL) if nir else {}
    if deliver:
        bands.update(event=_EVENT_LEVEL, lidar=_LIDAR_LEVEL)
    keys = ('img_dir', 'dsm_dir', 'ann_dir', 'ann_eroded_dir') + tuple(
        f'{name}_dir' for name in bands)
    dirs = {k: osp.join(root, k, split) for k in keys}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    for i in range(num):
        rng = np.random.default_rng([seed, split_id, i])
        rgb, dsm, label = synthesize_tile(rng, *size)
        stem = f'{split}_{i:04d}'
        # each band its own random stream: RGB and DSM stay as without it
        for j, (name, levels) in enumerate(bands.items()):
            stream = [seed, split_id, i, 1] + [j] * (name != 'nir')
            tifffile.imwrite(
                osp.join(dirs[f'{name}_dir'], stem + '.tif'),
                synthesize_nir(np.random.default_rng(stream), label, levels),
                photometric='minisblack')
        tifffile.imwrite(
            osp.join(dirs['img_dir'], stem + '.tif'), rgb, photometric='rgb')
        tifffile.imwrite(
            osp.join(dirs['dsm_dir'], stem + '.tif'),
            dsm,
            photometric='minisblack')
        for key, lab in (('ann_dir', label), ('ann_eroded_dir',
                                              erode_labels(
                                                  label, erosion_radius))):
            if not cv2.imwrite(osp.join(dirs[key], stem + '.png'), lab):
                raise OSError(f'cannot write {dirs[key]}/{stem}.png')


def generate_synthetic_dataset(out_dir: str,
                               num_train: int = 32,
                               num_test: int = 8,
                               tile_size: Size = 128,
                               seed: int = 0,
                               test_tile_size: Size = (200, 176),
                               erosion_radius: int = 1,
                               overwrite: bool = False,
                               nir: bool = False,
                               deliver: bool = False) -> str:
    """Write the synthetic dataset in the converted layout.

    Layout (``STEM`` = ``train_0000`` ...)::

        out_dir/img_dir/{train,test}/STEM.tif         RGB uint8, 3 bands
        out_dir/dsm_dir/{train,test}/STEM.tif         float32, -9999 no-data
        out_dir/ann_dir/{train,test}/STEM.png         uint8 labels 0..5
        out_dir/ann_eroded_dir/{train,test}/STEM.png  same, 255 at borders
        out_dir/meta.json                             the parameters

    Deterministic: the same arguments give byte-identical files; tile ``i``
    of a split depends only on ``seed``, the split and ``i``. Atomic: the
    files are written to a temporary sibling folder renamed to ``out_dir``
    at the end, so an interrupted run leaves no partial ``out_dir``. If
    ``out_dir`` already holds a dataset made with the same parameters (and
    generator version), nothing is written; one made by this generator with
    other parameters or an older version is replaced; anything else is
    only replaced with ``overwrite=True``.

    Args:
        out_dir (str): Folder to create.
        num_train (int): Training tiles. Defaults to 32.
        num_test (int): Test tiles. Defaults to 8.
        tile_size (int | tuple): Training tile (h, w). Defaults to 128.
        seed (int): Random seed. Defaults to 0.
        test_tile_size (int | tuple): Test tile (h, w); defaults to
            (200, 176): larger than a 128 window and not a multiple of
            common slide strides, to exercise whole-tile inference.
        erosion_radius (int): Border half-width of the eroded labels.
        overwrite (bool): Replace an existing ``out_dir`` that was not
            written by this function.
        nir (bool): Also write a third modality, ``nir_dir/{split}/STEM.tif``
            (uint8 NIR band with its own class evidence, see
            :func:`synthesize_nir`); the RGB, DSM and labels are the same
            as without it.
        deliver (bool): Also write ``event_dir`` and ``lidar_dir`` (uint8,
            1 band, class levels of their own, as the NIR): with RGB and
            DSM (standing for Depth) the four modalities of DELIVER.

    Returns:
        str: ``out_dir``.

    Raises:
        FileExistsError: ``out_dir`` exists, was not written by this
            function, and ``overwrite`` is False.
    """
    if num_train < 0 or num_test < 0 or num_train + num_test == 0:
        raise ValueError(f'num_train={num_train}, num_test={num_test}: '
                         f'expected non-negative counts, not both 0')
    train_hw, test_hw = _hw(tile_size, 'tile_size'), _hw(
        test_tile_size, 'test_tile_size')
    meta = dict(
        generator='mmrsfusion.datasets.synthetic',
        version=GENERATOR_VERSION,
        num_train=int(num_train),
        num_test=int(num_test),
        tile_size=list(train_hw),
        test_tile_size=list(test_hw),
        seed=int(seed),
        erosion_radius=int(erosion_radius),
        nodata=NODATA,
        classes=['impervious_surface', 'building', 'low_vegetation', 'tree',
                 'car', 'clutter'])
    if nir:
        meta['nir'] = True
    if deliver:
        meta['deliver'] = True
    out_dir = osp.abspath(out_dir)
    meta_path = osp.join(out_dir, META_FILE)
    if osp.exists(out_dir):
        old = None
        if osp.isfile(meta_path):
            with open(meta_path) as f:
                try:
                    old = json.load(f)
                except ValueError:
                    old = None
        if old == meta:
            return out_dir
        ours = isinstance(old, dict) and \
            old.get('generator') == meta['generator']
        if not (ours or overwrite):
            raise FileExistsError(
                f'{out_dir} exists and was not written by this generator '
                f'(no {META_FILE} of it); pass overwrite=True (--overwrite) '
                f'to replace it')
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.tmp-', dir=parent)
    try:
        _write_split(tmp, 'train', num_train, train_hw, seed, 0,
                     erosion_radius, nir, deliver)
        _write_split(tmp, 'test', num_test, test_hw, seed, 1, erosion_radius,
                     nir, deliver)
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(meta, f, indent=2)
        if osp.exists(out_dir):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(out_dir)}.old-', dir=parent)
            os.rename(out_dir, osp.join(old, 'data'))
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


@DATASETS.register_module()
class SyntheticMMDataset(ISPRSMMDataset):
    """The synthetic ISPRS-like dataset written by
    :func:`generate_synthetic_dataset` (RGB ``img_dir`` + float32
    ``dsm_dir`` [+ uint8 ``nir_dir``], 6 ISPRS classes). See
    :class:`MultiModalSegDataset`."""

    MAKE_COMMAND = 'mmrsfusion make-synthetic {root}'

    @classmethod
    def make_command(cls, data_root, data_prefix: dict) -> str:
        """The generator's command, with ``--nir`` / ``--deliver`` when
        ``data_prefix`` reads those variants' folders."""
        flags = [flag for flag, key in (('--nir', 'nir_path'),
                                        ('--deliver', 'event_path'))
                 if key in data_prefix]
        return ' '.join([super().make_command(data_root, data_prefix)] +
                        flags)
