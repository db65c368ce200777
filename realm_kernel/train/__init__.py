"""The training engine: TrainerEngine.run_job(job) -> TrainingResult."""

from .trainer import Job, TrainerEngine, TrainingResult, load_model_and_tokenizer

__all__ = ["Job", "TrainerEngine", "TrainingResult", "load_model_and_tokenizer"]
