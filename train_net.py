#!/usr/bin/env python
"""Train or evaluate a Detectron2 model with focal_eiou_d2's box-regression losses.

Examples:
    # 8 GPUs on one machine
    python train_net.py --num-gpus 8 \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x_focal_eiou.yaml
    # evaluation of a trained model
    python train_net.py --eval-only \\
        --config-file configs/COCO-Detection/retinanet_R_50_FPN_1x_focal_eiou.yaml \\
        MODEL.WEIGHTS output/model_final.pth
    # two machines with 8 GPUs each (run on both, --machine-rank 0 and 1)
    python train_net.py --config-file ... --num-gpus 8 --num-machines 2 --machine-rank 0 \\
        --dist-url tcp://<host of rank 0>:29500
"""

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, launch
from detectron2.evaluation import verify_results
from detectron2.utils import comm

import focal_eiou_d2.data  # noqa: F401  registers the embedded datasets
from focal_eiou_d2.engine import FocalEIoUTrainer, check_datasets_exist, setup_cfg


def main(args):
    cfg = setup_cfg(args)
    check_datasets_exist(cfg)
    if args.eval_only:
        model = FocalEIoUTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = FocalEIoUTrainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        return results
    trainer = FocalEIoUTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
