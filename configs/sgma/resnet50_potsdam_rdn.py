# SGMA with a ResNet-50 encoder (mmseg's ResNetV1c, the paper's second
# backbone), ISPRS Potsdam R + D + N. ImageNet weights: set
#   model.backbone.backbone.init_cfg="dict(type='Pretrained',
#       checkpoint='open-mmlab://resnet50_v1c')"
# (a download; or a local file).
_base_ = ['./pvtv2b2_potsdam_rdn.py']
in_channels = [256, 512, 1024, 2048]
model = dict(
    backbone=dict(
        backbone=dict(
            _delete_=True,
            type='ResNetV1c',
            depth=50,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 1, 1),
            strides=(1, 2, 2, 2),
            norm_cfg={{_base_.norm_cfg}},
            norm_eval=False,
            style='pytorch',
            contract_dilation=True)),
    neck=dict(in_channels=in_channels),
    decode_head=dict(in_channels=in_channels))
