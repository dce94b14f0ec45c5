# The MoBaNet CPU demo (demo_tinyvit_synthetic.py) trained straight from
# georeferenced scenes: a scene list of RGB (0.25 m), DSM (1 m, another
# extent: resampled onto the RGB grid on the fly), polygon labels (GeoJSON)
# and an area of interest per scene (SceneDataset). Training draws random
# 128 x 128 windows weighted by AOI area; testing tiles the 'val' scenes
# with a grid of windows. Only windows are read.
#   python tools/misc/make_synthetic_dataset.py data/synthetic_scenes \
#       --scene-set 3
#   python tools/train.py configs/mobanet/demo_tinyvit_scenes.py \
#       --work-dir work_dirs/mobanet_demo_scenes
#   python tools/test.py configs/mobanet/demo_tinyvit_scenes.py \
#       work_dirs/mobanet_demo_scenes/iter_600.pth
# (the frozen ViT file as in demo_tinyvit_synthetic.py)
_base_ = ['./demo_tinyvit_synthetic.py']

data_root = 'data/synthetic_scenes'
scene_dataset = dict(
    _delete_=True,
    type='SceneDataset',
    data_root=data_root,
    ann_file='scenes.csv',
    crop_size=(128, 128),
    # the synthetic polygons cover every pixel with one of these classes
    metainfo=dict(
        classes=('impervious_surface', 'building', 'low_vegetation', 'tree',
                 'car', 'clutter'),
        palette=[[255, 255, 255], [0, 0, 255], [0, 255, 255], [0, 255, 0],
                 [255, 255, 0], [255, 0, 0]]))
train_dataloader = dict(
    dataset=dict(
        **scene_dataset,
        split='train',
        samples_per_epoch=256,
        pipeline=[
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='RandomFlip', prob=0.5, direction='vertical'),
            dict(
                type='OpticalOnly',
                transforms=[dict(type='PhotoMetricDistortion')]),
            dict(type='PackSegInputs'),
        ]))
test_dataloader = dict(
    dataset=dict(
        **scene_dataset,
        split='val',
        test_mode=True,
        pipeline=[dict(type='PackSegInputs')]))
# the ISPRS metrics over all 'val' scenes and for each scene
test_evaluator = dict(
    _delete_=True, type='PerSceneMetric', metric=dict(type='ISPRSMetric'))
