"""The real Qwen3-0.6B config, cut to 2 layers (vocab 151,936 kept), through the whole
loop bench/real_hero_cpu.py measures: daemon training and saving, the eval pipeline
scoring the newest checkpoint, the Oracle loading the weights-only one and answering."""

import pytest

from bench.real_hero_cpu import hero_loop

pytestmark = pytest.mark.slow


def test_the_real_architecture_trains_saves_scores_and_answers(tmp_path):
    f = hero_loop(tmp_path, layers=2, steps=4, save_steps=2, batch=2, seq=64, eval_size=2)
    assert f["layers"] == 2 and f["checkpoints"] >= 2  # all weights-only by then (the loop checks)
    # weights-only: bf16 weights (~190M parameters, tied embeddings) and the small files;
    # a resume checkpoint (as written) adds AdamW's two moments and the scheduler/RNG state
    assert 0.3e9 < f["weights_only_checkpoint_bytes"] < 0.5e9
    assert f["resume_checkpoint_bytes"] > 2.5 * f["weights_only_checkpoint_bytes"]
    assert f["eval_problems"] == 2 and 0.0 <= f["eval_accuracy"] <= 1.0
    assert f["oracle_answer_tokens"] and f["oracle_answer_tokens"] >= 1
    assert f["daemon_peak_rss_bytes"] > f["weights_only_checkpoint_bytes"]
