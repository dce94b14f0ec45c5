"""Small synthetic ISPRS raw downloads with the real names, band counts and
dtypes, for the dataset-converter tests.

Each writer returns the arrays a correct conversion must produce, per tile:
``img`` (optical in the band order written), ``dsm`` (float32 as converted:
every no-data pixel NaN), ``ndsm`` (uint8 as decoded from the JPEG),
``ann`` / ``ann_eroded`` (expected class indices, 255 where a pixel must be
ignored) and ``special`` (positions of the hand-placed pixels).
"""
import io
import os
import os.path as osp
import zipfile

import cv2
import numpy as np
import tifffile

PALETTE = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0),
           (255, 255, 0), (255, 0, 0))

VAIHINGEN_IMAGES = 'ISPRS_semantic_labeling_Vaihingen'
VAIHINGEN_GT = 'ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE'
VAIHINGEN_ERODED = \
    'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE'
#: (H, W) of each synthetic Vaihingen area; sides differ like the real ones.
VAIHINGEN_SIZES = {1: (50, 70), 2: (45, 60), 3: (40, 52), 5: (64, 64)}
POTSDAM_SIZE = (48, 48)


def tiff_bytes(arr: np.ndarray) -> bytes:
    """A TIFF as the ISPRS files are: contiguous bands, RGB photometric for
    3 bands, RGB + 1 extra sample for 4 bands, greyscale for 1."""
    buf = io.BytesIO()
    if arr.ndim == 3 and arr.shape[-1] == 4:
        tifffile.imwrite(buf, arr, photometric='rgb',
                         extrasamples=['unspecified'])
    elif arr.ndim == 3:
        tifffile.imwrite(buf, arr, photometric='rgb')
    else:
        tifffile.imwrite(buf, arr, photometric='minisblack')
    return buf.getvalue()


def class_map(h: int, w: int, seed: int) -> np.ndarray:
    """Blocky class indices using all six classes."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 6, size=(h // 8 + 1, w // 8 + 1))
    blocks.flat[:6] = np.arange(6)
    return np.kron(blocks, np.ones((8, 8), int))[:h, :w].astype(np.uint8)


def colour_label(index: np.ndarray):
    """Colour-code ``index`` the ISPRS way, then put in the defects real
    label TIFFs have: returns (rgb, expected index, special pixels).

    - (1, 1): a slightly-off colour of its class (within tolerance 10):
      must snap to the class;
    - (2, 2): grey (128, 128, 128), far from every class: must become 255.
    """
    rgb = np.array(PALETTE, np.uint8)[index]
    expected = index.copy()
    c = np.array(PALETTE[index[1, 1]], int)
    rgb[1, 1] = np.clip(c + np.where(c > 127, -6, 6), 0, 255)
    rgb[2, 2] = (128, 128, 128)
    expected[2, 2] = 255
    return rgb, expected, dict(snapped=(1, 1), unknown=(2, 2))


def eroded_label(index: np.ndarray):
    """The noBoundary label: class boundaries painted black (-> 255), plus
    one slightly-off black pixel at (3, 3) (also 255)."""
    rgb, expected, special = colour_label(index)
    boundary = np.zeros(index.shape, bool)
    boundary[:, 1:] |= index[:, 1:] != index[:, :-1]
    boundary[1:, :] |= index[1:, :] != index[:-1, :]
    boundary[1, 1] = boundary[2, 2] = False  # keep the special pixels
    rgb[boundary] = 0
    expected[boundary] = 255
    rgb[3, 3] = (3, 2, 4)
    expected[3, 3] = 255
    special = dict(special, boundary=tuple(map(tuple, np.argwhere(boundary)
                                               [:3])))
    return rgb, expected, special


def converted_dsm(raw: np.ndarray, nodata=(-9999.0, )) -> np.ndarray:
    """The DSM a conversion must write: no-data values become NaN."""
    return np.where(np.isin(raw, nodata) | ~np.isfinite(raw), np.nan,
                    raw).astype(np.float32)


def elevation(h: int, w: int, seed: int) -> np.ndarray:
    """float32 heights with no-data: -9999 at (0, 0) and (h-1, w-1), NaN at
    (0, 1)."""
    rng = np.random.default_rng(seed)
    dsm = (250 + 40 * rng.random((h, w))).astype(np.float32)
    dsm[0, 0] = dsm[-1, -1] = -9999.0
    dsm[0, 1] = np.nan
    return dsm


class _Sink:
    """Writes named files into zip archives or folders below a root."""

    def __init__(self, root: str, as_zip: bool, depth: str = ''):
        self.root = osp.join(root, depth) if depth else root
        self.as_zip = as_zip
        self.archives = {}

    def add(self, archive: str, member: str, data: bytes) -> None:
        if self.as_zip:
            self.archives.setdefault(archive, []).append((member, data))
        else:
            path = osp.join(self.root, archive, member)
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)

    def close(self) -> None:
        os.makedirs(self.root, exist_ok=True)
        for archive, members in self.archives.items():
            with zipfile.ZipFile(osp.join(self.root, archive + '.zip'), 'w',
                                 zipfile.ZIP_DEFLATED) as zf:
                for member, data in members:
                    zf.writestr(member, data)


def make_vaihingen_raw(root: str, areas=(1, 2, 3, 5), as_zip: bool = True,
                       depth: str = '', dsm_shapes=None, skip=(),
                       train_areas=(1, 3, 5)):
    """Write a Vaihingen download as the ISPRS ships it.

    ``ISPRS_semantic_labeling_Vaihingen(.zip)`` holds ``top/`` (IRRG uint8
    3-band images), ``dsm/`` (float32 DSMs) and ``gts_for_participants/``
    (labels of ``train_areas``); the COMPLETE archive holds every label
    under the *same* name as the image; the eroded archive holds the
    ``_noBoundary`` labels.

    Args:
        root: Folder to write into.
        areas: Area numbers to write.
        as_zip: Zip archives (True) or extracted folders (False).
        depth: Sub-path of ``root`` to put everything in (any depth).
        dsm_shapes: ``{area: (H, W)}`` DSMs of a different size than the
            image (size-mismatch tests).
        skip: ``{(area, kind)}`` files not to write, kind one of ``'img'``,
            ``'dsm'``, ``'ann'``, ``'ann_eroded'``.

    Returns:
        dict: ``{'area{N}': expected arrays}``.
    """
    sink = _Sink(root, as_zip, depth)
    expected = {}
    for n in areas:
        h, w = VAIHINGEN_SIZES.get(n, (36, 44))
        rng = np.random.default_rng(n)
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        dh, dw = (dsm_shapes or {}).get(n, (h, w))
        dsm = elevation(dh, dw, seed=100 + n)
        index = class_map(h, w, seed=n)
        ann_rgb, ann, special = colour_label(index)
        ero_rgb, ann_eroded, special_ero = eroded_label(index)
        name = f'top_mosaic_09cm_area{n}.tif'
        if (n, 'img') not in skip:
            sink.add(VAIHINGEN_IMAGES, f'top/{name}', tiff_bytes(img))
        if (n, 'dsm') not in skip:
            sink.add(VAIHINGEN_IMAGES, f'dsm/dsm_09cm_matching_area{n}.tif',
                     tiff_bytes(dsm))
        if (n, 'ann') not in skip:
            if n in train_areas:
                sink.add(VAIHINGEN_IMAGES, f'gts_for_participants/{name}',
                         tiff_bytes(ann_rgb))
            sink.add(VAIHINGEN_GT, name, tiff_bytes(ann_rgb))
        if (n, 'ann_eroded') not in skip:
            sink.add(VAIHINGEN_ERODED,
                     f'top_mosaic_09cm_area{n}_noBoundary.tif',
                     tiff_bytes(ero_rgb))
        expected[f'area{n}'] = dict(img=img, dsm=converted_dsm(dsm), ann=ann,
                                    ann_eroded=ann_eroded, special=special,
                                    special_eroded=special_ero)
    sink.close()
    return expected


POTSDAM_ARCHIVES = dict(RGB='2_Ortho_RGB', IRRG='3_Ortho_IRRG',
                        RGBIR='4_Ortho_RGBIR', dsm='1_DSM',
                        ndsm='1_DSM_normalisation', ann='5_Labels_all',
                        ann_eroded='5_Labels_all_noBoundary')


def make_potsdam_raw(root: str, tiles=('2_10', '2_11', '7_10', '2_13'),
                     as_zip: bool = True, depth: str = '',
                     nested_zip: str = None, dsm_shapes=None):
    """Write a Potsdam download as the ISPRS ships it: one archive per
    product (``2_Ortho_RGB.zip`` ... ``5_Labels_all_noBoundary.zip``), each
    with its files in a folder of the archive's name (labels at the root),
    RGBIR 4-band uint8, RGB and IRRG 3-band uint8 (the same scene), float32
    DSMs ``dsm_potsdam_0a_bb.tif`` and 8-bit nDSM JPEGs.

    Args:
        nested_zip: If given (e.g. ``'Potsdam'``), the product archives are
            themselves put inside ``{nested_zip}.zip`` (needs ``as_zip``).
        dsm_shapes: ``{tile: (H, W)}`` DSMs / nDSMs of a different size.

    Returns:
        dict: ``{tile: expected arrays}``; ``img`` is a dict per optical
        choice.
    """
    sink = _Sink(root, as_zip, depth)
    expected = {}
    h, w = POTSDAM_SIZE
    for k, tile in enumerate(tiles):
        a, b = tile.split('_')
        rng = np.random.default_rng(1000 + k)
        rgbir = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
        optical = dict(RGBIR=rgbir, RGB=rgbir[..., :3].copy(),
                       IRRG=rgbir[..., [3, 0, 1]].copy())
        dh, dw = (dsm_shapes or {}).get(tile, (h, w))
        dsm = elevation(dh, dw, seed=2000 + k)
        ndsm_src = np.kron(rng.integers(0, 256, size=(dh // 8 + 1,
                                                      dw // 8 + 1)),
                           np.ones((8, 8)))[:dh, :dw].astype(np.uint8)
        ok, jpg = cv2.imencode('.jpg', ndsm_src)
        assert ok
        ndsm = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)
        index = class_map(h, w, seed=3000 + k)
        ann_rgb, ann, special = colour_label(index)
        ero_rgb, ann_eroded, special_ero = eroded_label(index)
        for opt, arr in optical.items():
            arch = POTSDAM_ARCHIVES[opt]
            sink.add(arch, f'{arch}/top_potsdam_{a}_{b}_{opt}.tif',
                     tiff_bytes(arr))
        aa, bb = f'{int(a):02d}', f'{int(b):02d}'
        sink.add('1_DSM', f'1_DSM/dsm_potsdam_{aa}_{bb}.tif', tiff_bytes(dsm))
        sink.add('1_DSM_normalisation',
                 f'1_DSM_normalisation/dsm_potsdam_{aa}_{bb}'
                 '_normalized_lastools.jpg', jpg.tobytes())
        sink.add('5_Labels_all', f'top_potsdam_{a}_{b}_label.tif',
                 tiff_bytes(ann_rgb))
        sink.add('5_Labels_all_noBoundary',
                 f'top_potsdam_{a}_{b}_label_noBoundary.tif',
                 tiff_bytes(ero_rgb))
        expected[tile] = dict(img=optical, dsm=converted_dsm(dsm), ndsm=ndsm,
                              ann=ann,
                              ann_eroded=ann_eroded, special=special,
                              special_eroded=special_ero)
    if nested_zip:
        assert as_zip, 'nested_zip needs as_zip=True'
        outer = _Sink(root, True, depth)
        for archive, members in sink.archives.items():
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zf:
                for member, data in members:
                    zf.writestr(member, data)
            outer.add(nested_zip, f'{nested_zip}/{archive}.zip',
                      buf.getvalue())
        outer.close()
    else:
        sink.close()
    return expected
