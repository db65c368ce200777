"""The VRAM calculator lives in store/vram.py (pure arithmetic, no torch), so that
store.profiles can size a hero profile's batch for the card when realm.toml is loaded;
this module keeps the train-layer name it always had."""

from ..store.vram import (
    ALLOCATOR_SLACK,
    CUDA_CONTEXT_BYTES,
    DTYPE_BYTES,
    GB,
                          NF4_BYTES,
    OPTIMIZERS,
    PROJECTIONS,
    VramEstimate,
    count_params,
    estimate,
    estimate_from_path,
    lora_params,
    projection_shapes,
)

__all__ = ["ALLOCATOR_SLACK", "CUDA_CONTEXT_BYTES", "DTYPE_BYTES", "GB", "NF4_BYTES", "OPTIMIZERS",
           "PROJECTIONS", "VramEstimate", "count_params", "estimate", "estimate_from_path",
           "lora_params", "projection_shapes"]
