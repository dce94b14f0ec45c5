# ISPRS Potsdam (RGB + nDSM), MFNet's split (test tiles 4_10, 5_11, 2_11,
# 3_10, 6_11, 7_12; 18 train tiles), converted with
#   python tools/dataset_converters/potsdam.py RAW_PATH --split mfnet \
#       --elevation ndsm -o data/potsdam_mfnet
# Batch 10 (ViT-H configs: 4).
_base_ = ['../../_base_/datasets/potsdam_mm.py']
data_root = 'data/potsdam_mfnet'
train_dataloader = dict(
    batch_size=10, dataset=dict(data_root=data_root, elevation='ndsm'))
val_dataloader = dict(dataset=dict(data_root=data_root, elevation='ndsm'))
test_dataloader = val_dataloader
