"""Training the CLIPSeg decoder: configs, the loop, exact resume, torchrun/DDP.

    from clipseg.training import TrainConfig, train
    result = train(model, dataset, TrainConfig(iterations=1000, out_dir="runs/x"), tokenizer)

Command line: `clipseg train --config configs/clipseg-pc-plus.json --data ROOT --backbone ViT-B-16.pt`
(under `torchrun --nproc_per_node N` for several GPUs).
"""

from .checkpoint import CheckpointMismatchError, load_checkpoint
from .config import DataSpec, Experiment, ModelSpec, TrainConfig
from .sampler import ShardedBatchSampler, derive_seed
from .trainer import StepInfo, TrainResult, train

__all__ = [
    "CheckpointMismatchError",
    "DataSpec",
    "Experiment",
    "ModelSpec",
    "ShardedBatchSampler",
    "StepInfo",
    "TrainConfig",
    "TrainResult",
    "derive_seed",
    "load_checkpoint",
    "train",
]
