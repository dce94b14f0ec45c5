# ISPRS Vaihingen (IRRG + DSM), MFNet's split (train areas 1, 3, 23, 26, 7,
# 11, 13, 28, 17, 32, 34, 37; test 5, 21, 15, 30), converted with
#   python tools/dataset_converters/vaihingen.py RAW_PATH --split mfnet \
#       -o data/vaihingen_mfnet
# Batch 10 (ViT-H configs: 4).
_base_ = ['../../_base_/datasets/vaihingen_mm.py']
data_root = 'data/vaihingen_mfnet'
train_dataloader = dict(batch_size=10, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
