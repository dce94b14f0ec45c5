# SGMA demo with FOUR modalities, DELIVER's count (15 subsets), on the CPU:
# demo_r18_synthetic_rdn.py on synthetic data with RGB + DSM (standing for
# Depth) + Event + LiDAR bands (6 classes), written by
#   python tools/misc/make_synthetic_dataset.py data/synthetic_rdel --deliver
#   python tools/train.py configs/sgma/demo_r18_synthetic_rdel.py \
#       --work-dir work_dirs/sgma_demo_rdel
#   python tools/analysis_tools/eval_modality_subsets.py \
#       configs/sgma/demo_r18_synthetic_rdel.py \
#       work_dirs/sgma_demo_rdel/iter_300.pth
_base_ = ['./demo_r18_synthetic_rdn.py']
data_root = 'data/synthetic_rdel'

# Event and LiDAR: raw 0-255, mapped to [-1, 1].
modalities = [
    dict(
        name='rgb',
        channels=3,
        kind='optical',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    dict(name='dsm', channels=1, kind='elevation', mean=[0.0], std=[1.0]),
    dict(name='event', channels=1, kind='band', mean=[127.5], std=[127.5]),
    dict(name='lidar', channels=1, kind='band', mean=[127.5], std=[127.5]),
]

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(
            _delete_=True,
            img_path='img_dir/train',
            dsm_path='dsm_dir/train',
            event_path='event_dir/train',
            lidar_path='lidar_dir/train',
            seg_map_path='ann_dir/train')))
test_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(
            _delete_=True,
            img_path='img_dir/test',
            dsm_path='dsm_dir/test',
            event_path='event_dir/test',
            lidar_path='lidar_dir/test',
            seg_map_path='ann_eroded_dir/test')))
