"""The CUDA paths, on a CUDA machine only (skipped cleanly elsewhere; bench/gpu_check.sh
runs them): bf16 loading, flash-attention's varlen kernel on packed rows, Liger, paged
8-bit AdamW, fused AdamW, and NVML's view of the card."""

import pytest
import torch

from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.mixed import mixed_examples

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def train(paths, run_id: str, **training):
    """Three real steps of dio-mini on this GPU with these training settings."""
    led = Ledger(paths, "test")
    cfg = load_config(paths.home).training.model_copy(update={"max_steps": 3, "eval_fraction": 0.0,
                                                              **training})
    res = TrainerEngine(paths, led).run_job(Job(quest_id="q.jsonl", examples=mixed_examples(40, seed=5),
                                                model_path=paths.dio_mini, run_id=run_id, training=cfg))
    assert res.success, res.error_message
    losses = [r["loss"] for r in led.query(
        "SELECT loss FROM metrics WHERE run_id = ? AND loss IS NOT NULL ORDER BY step", [run_id])]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses))), losses
    return res


def test_bf16_load_on_cuda(dio_mini_dir):
    from realm_kernel.train.loading import load_model_and_tokenizer
    model, tok = load_model_and_tokenizer(dio_mini_dir, inference=True)
    assert model.dtype == torch.bfloat16 and next(model.parameters()).is_cuda
    ids = tok.apply_chat_template([{"role": "user", "content": "①+①?"}], add_generation_prompt=True,
                                  return_tensors="pt").to("cuda")
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]


@torch.no_grad()
def test_flash_attention_varlen_packing_equals_each_example_alone(dio_mini_dir):
    pytest.importorskip("flash_attn")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from realm_kernel.train.data import IGNORE, PadCollator, build_datasets
    from realm_kernel.train.packing import PackedCollator, PackedDataset
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    model = AutoModelForCausalLM.from_pretrained(dio_mini_dir, dtype=torch.bfloat16,
                                                 attn_implementation="flash_attention_2").cuda().eval()
    train_ds, _, _ = build_datasets(tok, mixed_examples(24, seed=2), 256, 0.0, 0, 0)
    packed = PackedDataset(train_ds.rows, capacity=256)
    row = max(packed.rows, key=len)
    assert len(row) >= 2, "a packed row of several examples"
    batch = PackedCollator(tok.pad_token_id, "flash_attention_2")([row])
    assert "attention_mask" not in batch, "position_ids alone select the varlen kernel"
    logits = model(input_ids=batch["input_ids"].cuda(), position_ids=batch["position_ids"].cuda()).logits[0]
    target = torch.cat([batch["labels"][0, 1:], torch.tensor([IGNORE])]).cuda()
    at = 0
    for ex in row:
        n = len(ex["input_ids"])
        alone = PadCollator(0)([ex])
        ref_logits = model(input_ids=alone["input_ids"].cuda()).logits[0]
        ref_target = torch.cat([alone["labels"][0, 1:], torch.tensor([IGNORE])]).cuda()
        ref = torch.nn.functional.cross_entropy(ref_logits.float(), ref_target, ignore_index=IGNORE)
        got = torch.nn.functional.cross_entropy(logits[at:at + n].float(), target[at:at + n],
                                                ignore_index=IGNORE)
        assert got.item() == pytest.approx(ref.item(), rel=2e-2, abs=2e-2), f"example at {at}"
        at += n


def test_liger_trains(realm_home):
    pytest.importorskip("liger_kernel")
    train(realm_home, "liger", liger="on")


def test_paged_8bit_adamw_trains(realm_home):
    pytest.importorskip("bitsandbytes")
    train(realm_home, "paged", optimizer="paged_adamw_8bit")


def test_adamw_is_fused_on_cuda(realm_home):
    from realm_kernel.train.optim import build_optimizer
    assert build_optimizer(torch.nn.Linear(2, 2).cuda(), "adamw", lr=1e-3, muon_lr=0,
                           weight_decay=0) == (None, "adamw_torch_fused")
    train(realm_home, "fused", optimizer="adamw")


def test_nvml_sees_this_card():
    from realm_kernel.services.taskmaster import gpu_status
    gpu = gpu_status()
    assert len(gpu["gpus"]) == torch.cuda.device_count(), gpu
    total = torch.cuda.get_device_properties(0).total_memory
    assert gpu["gpus"][0]["memory_total"] == pytest.approx(total, rel=0.05)
    assert 0 <= gpu["gpus"][0]["utilisation"] <= 100


def test_a_battle_records_its_peak_memory_beside_the_estimate(realm_home):
    """The figures bench/gpu_check.sh leaves in the realm: torch's and NVML's peak beside the
    VRAM calculator's estimate for the battle's settings (train/memory.py)."""
    from realm_kernel.store.batch_fit import describe_peak, peaks_for
    train(realm_home, "peak")
    peak, = peaks_for(realm_home, str(realm_home.dio_mini))
    assert peak["max_memory_allocated"] > 0 and peak["estimate"] > 0, peak
    print(describe_peak(peak))
