"""The training engine: TrainerEngine.run_job(job) -> TrainingResult."""

from .loading import load_model_and_tokenizer
from .trainer import Job, TrainerEngine, TrainingResult

__all__ = ["Job", "TrainerEngine", "TrainingResult", "load_model_and_tokenizer"]
