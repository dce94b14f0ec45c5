# ISPRS Vaihingen, IRRG + DSM, official split (train areas 1, 3, 5, ...;
# test areas 2, 4, 6, ...), converted with
#   python tools/dataset_converters/vaihingen.py RAW_PATH -o data/vaihingen
# (whole tiles by default). The optical channels are IR, R, G (file order).
_base_ = ['./isprs_mm.py']
dataset_type = 'VaihingenMMDataset'
data_root = 'data/vaihingen'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
