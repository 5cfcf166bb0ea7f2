"""Narrow ResNet-18/34 FPN backbones, for training from scratch on a CPU (the quickstart).

Detectron2 builds ResNet-18/34 only with 64 channels in res2 (512 in res5). :func:`narrow_resnet`
takes the width of res2 (doubling at each stage, as in ResNet) and of the stem; with 32 instead of
64 a training step costs about a quarter of the compute. Everything else (FPN, P6/P7 or max-pool
top block) is Detectron2's. The ``build_*_backbone`` functions read these from a YAML config
(MODEL.RESNETS.RES2_OUT_CHANNELS, STEM_OUT_CHANNELS); LazyConfig files call
:func:`narrow_resnet` directly.
"""

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import FPN, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool, LastLevelP6P7
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem

# Residual blocks per stage (res2..res5) of the ResNets made of basic blocks.
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def narrow_resnet(
    depth=18,
    stem_channels=32,
    res2_channels=32,
    norm="BN",
    out_features=("res3", "res4", "res5"),
    freeze_at=0,
    in_channels=3,
) -> ResNet:
    """A ResNet-18/34 of basic blocks whose res2 has ``res2_channels`` channels.

    Args:
        depth (int): 18 or 34.
        stem_channels (int): channels of the stem.
        res2_channels (int): channels of res2, doubling at each later stage.
        norm (str): Detectron2's norm name, e.g. "BN" (every layer trains from scratch).
        out_features (tuple[str]): the stages it outputs.
        freeze_at (int): stages frozen from the start (0: none).
        in_channels (int): channels of the input images.

    Returns:
        ResNet: stages res2..res5 with strides 4, 8, 16, 32.
    """
    if depth not in BLOCKS_PER_STAGE:
        raise ValueError(
            f"depth {depth} is not supported by the narrow ResNet backbones; valid choices: "
            f"{sorted(BLOCKS_PER_STAGE)} (MODEL.RESNETS.DEPTH in YAML configs)"
        )
    stem = BasicStem(in_channels, stem_channels, norm=norm)
    stages, channels = [], stem_channels
    for index, num_blocks in enumerate(BLOCKS_PER_STAGE[depth]):
        out_channels = res2_channels * 2**index
        first_stride = 1 if index == 0 else 2
        stages.append(
            ResNet.make_stage(
                BasicBlock,
                num_blocks,
                in_channels=channels,
                out_channels=out_channels,
                stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                norm=norm,
            )
        )
        channels = out_channels
    return ResNet(stem, stages, out_features=list(out_features), freeze_at=freeze_at)


def build_narrow_resnet(cfg, input_shape: ShapeSpec) -> ResNet:
    """:func:`narrow_resnet` from MODEL.RESNETS.{DEPTH, NORM, STEM_OUT_CHANNELS,
    RES2_OUT_CHANNELS, OUT_FEATURES} and MODEL.BACKBONE.FREEZE_AT."""
    resnets = cfg.MODEL.RESNETS
    return narrow_resnet(
        resnets.DEPTH,
        resnets.STEM_OUT_CHANNELS,
        resnets.RES2_OUT_CHANNELS,
        resnets.NORM,
        resnets.OUT_FEATURES,
        cfg.MODEL.BACKBONE.FREEZE_AT,
        input_shape.channels,
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
