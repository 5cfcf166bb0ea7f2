"""Narrow ResNet-18/34 FPN backbones, for training from scratch on a CPU (the quickstart).

Detectron2 builds ResNet-18/34 only with 64 channels in res2 (512 in res5). These builders take
the width from ``MODEL.RESNETS.RES2_OUT_CHANNELS`` (doubling at each stage, as in ResNet) and the
stem's from ``MODEL.RESNETS.STEM_OUT_CHANNELS``; with 32 instead of 64 a training step costs about
a quarter of the compute. Everything else (FPN, P6/P7 or max-pool top block) is Detectron2's.
"""

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import FPN, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem

# Residual blocks per stage (res2..res5) of the ResNets made of basic blocks.
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def build_narrow_resnet(cfg, input_shape: ShapeSpec) -> ResNet:
    """A ResNet-18/34 whose res2 has ``MODEL.RESNETS.RES2_OUT_CHANNELS`` channels.

    Args:
        cfg: a Detectron2 config; uses MODEL.RESNETS.{DEPTH, NORM, STEM_OUT_CHANNELS,
            RES2_OUT_CHANNELS, OUT_FEATURES} and MODEL.BACKBONE.FREEZE_AT.
        input_shape (ShapeSpec): the input's channels.

    Returns:
        ResNet: stages res2..res5 with strides 4, 8, 16, 32.
    """
    resnets = cfg.MODEL.RESNETS
    if resnets.DEPTH not in BLOCKS_PER_STAGE:
        raise ValueError(
            f"MODEL.RESNETS.DEPTH = {resnets.DEPTH} is not supported by the narrow ResNet "
            f"backbones; valid choices: {sorted(BLOCKS_PER_STAGE)}"
        )
    in_channels = resnets.STEM_OUT_CHANNELS
    stem = BasicStem(input_shape.channels, in_channels, norm=resnets.NORM)
    stages = []
    for index, num_blocks in enumerate(BLOCKS_PER_STAGE[resnets.DEPTH]):
        out_channels = resnets.RES2_OUT_CHANNELS * 2**index
        first_stride = 1 if index == 0 else 2
        stages.append(
            ResNet.make_stage(
                BasicBlock,
                num_blocks,
                in_channels=in_channels,
                out_channels=out_channels,
                stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                norm=resnets.NORM,
            )
        )
        in_channels = out_channels
    return ResNet(
        stem, stages, out_features=resnets.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT
    )


def _fpn(cfg, bottom_up, top_block) -> FPN:
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block,
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_narrow_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """Narrow ResNet + FPN with P2-P6 (max-pool P6), as R-CNN models use."""
    return _fpn(cfg, build_narrow_resnet(cfg, input_shape), LastLevelMaxPool())


@BACKBONE_REGISTRY.register()
def build_narrow_retinanet_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """Narrow ResNet + FPN with P3-P7 (P6/P7 from res5), as RetinaNet uses."""
    bottom_up = build_narrow_resnet(cfg, input_shape)
    res5_channels = bottom_up.output_shape()["res5"].channels
    return _fpn(cfg, bottom_up, LastLevelP6P7(res5_channels, cfg.MODEL.FPN.OUT_CHANNELS))
