# ISPRS Potsdam, RGB + DSM by default, official split, converted with
#   python tools/dataset_converters/potsdam.py RAW_PATH -o data/potsdam
# (default --optical RGBIR: 4-band R, G, B, IR files, from which the dataset
# picks the bands; --elevation dsm, or ndsm / both).
#
# Options:
# - IRRG: optical_bands='IRRG' below (same 3-channel spec; mean/std in IR,
#   R, G order).
# - RGBIR: optical_bands='RGBIR', and the optical modality gets channels=4
#   and a 4th mean/std value (e.g. mean 100.0, std 50.0 for IR, or
#   measured). The modality spec is captured where isprs_mm.py builds the
#   data preprocessor and the pipelines, so a config changing it redefines
#   `modalities`, `data_preprocessor`, `train_pipeline` and `test_pipeline`
#   and sets the pipelines into the dataloaders' datasets (photometric
#   transforms then need OpticalOnly(..., channels=[0, 1, 2])).
# - nDSM instead of DSM: elevation='ndsm' below (reads ndsm_dir, 8-bit PNGs,
#   still min-max normalised per tile by the loader; convert with
#   --elevation ndsm or both).
_base_ = ['./isprs_mm.py']
dataset_type = 'PotsdamMMDataset'
data_root = 'data/potsdam'
optical_bands = 'RGB'
elevation = 'dsm'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        optical_bands=optical_bands,
        elevation=elevation))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        optical_bands=optical_bands,
        elevation=elevation))
test_dataloader = val_dataloader
