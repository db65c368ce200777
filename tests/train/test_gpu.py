"""The CUDA paths, on a CUDA machine only (skipped cleanly elsewhere; bench/gpu_check.sh
runs them and fails if any is skipped), each asserting the thing it names, read from the
Trainer's own objects: bf16 weights and gradients, flash-attention's varlen kernel keeping
packed examples apart token by token (and the same check failing on a leaking row), Liger's
forwards in the model, paged 8-bit AdamW's class and 8-bit paged state, QLoRA's 4-bit NF4
base layers, fused AdamW, and NVML's view of the card."""

import pytest
import torch
from transformers import TrainerCallback

from realm_kernel.store.config import load_config
from realm_kernel.store.ledger import Ledger
from realm_kernel.train import Job, TrainerEngine
from realm_kernel.train.mixed import mixed_examples

from ..packing_check import assert_examples_kept_apart, per_example_error

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def forward_module(fn) -> str:
    """The module a (possibly bound, possibly patched) forward comes from."""
    return getattr(getattr(fn, "__func__", fn), "__module__", "") or ""


class Probe(TrainerCallback):
    """What the battle really ran with, read from the Trainer's own objects: the model's
    module classes and forwards at the start, parameter and gradient dtypes just before
    the first optimizer step, the optimizer's class and state just after it."""

    def __init__(self) -> None:
        self.seen: dict = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.seen["bf16"] = args.bf16
        self.seen["classes"] = {type(m).__name__ for m in model.modules()}
        self.seen["forwards"] = {forward_module(m.forward) for m in model.modules()}
        self.seen["model_forward"] = forward_module(model.forward)
        self.seen["modules"] = dict(model.named_modules())

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if "grad_dtypes" not in self.seen:
            trained = [p for p in model.parameters() if p.requires_grad]
            self.seen["param_dtypes"] = {p.dtype for p in trained}
            self.seen["grad_dtypes"] = {p.grad.dtype for p in trained if p.grad is not None}

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        if "optimizer" not in self.seen:
            opt = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
            self.seen["optimizer"] = type(opt)
            self.seen["state"] = [st for st in opt.state.values() if st]


def train(paths, run_id: str, **training) -> dict:
    """Three real steps of dio-mini on this GPU with these training settings; what the
    Trainer really used (Probe)."""
    led = Ledger(paths, "test")
    cfg = load_config(paths.home).training.model_copy(update={"max_steps": 3, "eval_fraction": 0.0,
                                                              **training})
    probe = Probe()
    res = TrainerEngine(paths, led).run_job(Job(quest_id="q.jsonl", examples=mixed_examples(40, seed=5),
                                                model_path=paths.dio_mini, run_id=run_id, training=cfg,
                                                callbacks=[probe]))
    assert res.success, res.error_message
    losses = [r["loss"] for r in led.query(
        "SELECT loss FROM metrics WHERE run_id = ? AND loss IS NOT NULL ORDER BY step", [run_id])]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses))), losses
    return probe.seen


def test_bf16_load_on_cuda(dio_mini_dir):
    from realm_kernel.train.loading import load_model_and_tokenizer
    model, tok = load_model_and_tokenizer(dio_mini_dir, inference=True)
    assert model.dtype == torch.bfloat16 and next(model.parameters()).is_cuda
    ids = tok.apply_chat_template([{"role": "user", "content": "①+①?"}], add_generation_prompt=True,
                                  return_tensors="pt").to("cuda")
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]


def test_bf16_training_trains_bf16_weights_with_bf16_gradients(realm_home):
    seen = train(realm_home, "bf16", dtype="auto")
    assert seen["bf16"], "mixed precision on"
    assert seen["param_dtypes"] == {torch.bfloat16} and seen["grad_dtypes"] == {torch.bfloat16}, seen
    fp32 = train(realm_home, "fp32", dtype="float32")  # the contrast: the same probe sees float32
    assert fp32["param_dtypes"] == {torch.float32} and fp32["grad_dtypes"] == {torch.float32}, fp32


# bf16 on the GPU: a packed token and the same token alone agree to bf16's rounding; a
# leak moves some token's log-probability by ~0.9 on dio-mini (measured on the CPU).
BF16_TOL = 0.1


@torch.no_grad()
def test_flash_attention_varlen_packing_equals_each_example_alone(dio_mini_dir):
    """Per example, token by token (tests/packing_check.py), and the same check fails on
    the same row run as one causal sequence (position ids not restarting: a leak)."""
    pytest.importorskip("flash_attn")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from realm_kernel.train.data import build_datasets
    from realm_kernel.train.packing import PackedCollator, PackedDataset
    tok = AutoTokenizer.from_pretrained(dio_mini_dir)
    model = AutoModelForCausalLM.from_pretrained(dio_mini_dir, dtype=torch.bfloat16,
                                                 attn_implementation="flash_attention_2").cuda().eval()
    train_ds, _, _ = build_datasets(tok, mixed_examples(16, seed=2), 256, 0.0, 0, 0)
    rows = sorted(PackedDataset(train_ds.rows, capacity=512).rows, key=len)[-2:]
    assert min(len(r) for r in rows) >= 3, "rows of several examples"
    for row in rows:
        batch = PackedCollator(tok.pad_token_id, "flash_attention_2")([row])
        assert "attention_mask" not in batch, "position_ids alone select the varlen kernel"
        worst = assert_examples_kept_apart(model, batch, row, BF16_TOL, "flash_attention_2")
        leaky = {**batch, "position_ids": torch.arange(batch["input_ids"].shape[1])[None]}
        leak = max(per_example_error(model, leaky, row))
        assert leak > BF16_TOL > worst, (leak, worst)
        with pytest.raises(AssertionError, match="packed examples see each other"):
            assert_examples_kept_apart(model, leaky, row, BF16_TOL, "flash_attention_2, one sequence")


def test_liger_is_the_kernel_in_use(realm_home):
    pytest.importorskip("liger_kernel")
    on = train(realm_home, "liger", liger="on")
    assert on["model_forward"].startswith("liger_kernel"), on["model_forward"]  # fused linear + CE loss
    assert any(f.startswith("liger_kernel") for f in on["forwards"] - {on["model_forward"]}), on["forwards"]
    off = train(realm_home, "no-liger", liger="off")
    assert not any(f.startswith("liger_kernel") for f in off["forwards"] | {off["model_forward"]})


def test_paged_8bit_adamw_is_the_optimizer_and_its_state_is_8_bit_and_paged(realm_home):
    pytest.importorskip("bitsandbytes")
    seen = train(realm_home, "paged", optimizer="paged_adamw_8bit")
    assert seen["optimizer"].__name__ == "PagedAdamW8bit", seen["optimizer"]
    assert seen["optimizer"].__module__.startswith("bitsandbytes")
    big = [st for st in seen["state"] if "state1" in st and st["state1"].dtype == torch.uint8]
    assert big, [{k: getattr(v, "dtype", v) for k, v in st.items()} for st in seen["state"]]
    assert all(st["state2"].dtype == torch.uint8 for st in big), "both moments in 8 bits"
    assert all(getattr(st["state1"], "is_paged", False) for st in big), "the state lives in paged memory"


def test_qlora_trains_adapters_over_a_4_bit_base(realm_home):
    pytest.importorskip("bitsandbytes")
    pytest.importorskip("peft")
    import bitsandbytes as bnb
    seen = train(realm_home, "qlora", method="qlora")
    bases = {name: m for name, m in seen["modules"].items() if name.endswith("q_proj.base_layer")}
    assert bases and all(isinstance(m, bnb.nn.Linear4bit) for m in bases.values()), bases
    assert all(type(m.weight).__name__ == "Params4bit" and m.weight.quant_type == "nf4"
               for m in bases.values())
    assert "Linear4bit" in seen["classes"] and seen["param_dtypes"], "only the adapters train"
    assert all(not isinstance(m, bnb.nn.Linear4bit) for name, m in seen["modules"].items()
               if "lora_A" in name and hasattr(m, "weight"))


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
