"""The offline end-to-end proof: generated world -> small CLIP -> CLIPSeg -> paper metrics.

    from clipseg.world import run_pipeline, segment_demo
    result = run_pipeline()                 # pretrain, train 3 models, evaluate (cached)
    print(result.table)
    segment_demo("a photo of a red star.", "star.png", scene_seed=3)

Command line: `clipseg world [run|demo PROMPT]` (see __main__.py).
"""

from .pipeline import (
    MODEL_NAMES,
    PRESETS,
    DemoResult,
    PipelineResult,
    WorldPipelineConfig,
    default_cache_dir,
    score_world_model,
    format_table,
    load_world_models,
    pretrained_clip,
    run_pipeline,
    segment_demo,
    world_config,
    world_tokenizer,
)

__all__ = [
    "MODEL_NAMES", "PRESETS", "DemoResult", "PipelineResult", "WorldPipelineConfig", "default_cache_dir",
    "score_world_model", "format_table", "load_world_models", "pretrained_clip", "run_pipeline",
    "segment_demo", "world_config", "world_tokenizer",
]  # fmt: skip
