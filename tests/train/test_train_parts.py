"""The training engine's small parts, each against what a user relies on: the reply
spans that carry loss, dio-mini as built, packing's boundaries, Muon, LoRA's targets,
random-init presets, the launch command, the trackers' folders, the first line of an
error (the events' wording), and an adapter loaded over a base it names only in peft's
config."""

from __future__ import annotations

import json

import pytest
import torch

from realm_kernel.train.data import assistant_spans


def test_a_reply_at_the_very_start_of_the_text_is_found():
    assert assistant_spans("ok<e>", [{"role": "assistant", "content": "ok"}], "<e>") == [(0, 5)]


def test_a_user_turn_that_repeats_an_earlier_reply_does_not_move_the_search_back():
    """user "x", reply "hello", user "hello", reply "hello": the second reply is the last
    "hello", not the user's copy of the first."""
    text = "U:x|A:hello<e>|U:hello|A:hello<e>"
    msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hello"}]
    first, second = text.index("hello"), text.rindex("hello")
    assert assistant_spans(text, msgs, "<e>") == [(first, first + 8), (second, second + 8)]


def test_dio_mini_as_built_stops_at_its_end_of_turn_and_decodes_plain_text(tmp_path):
    """Built in the test itself (the session's dio-mini is built once, before any test)."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from realm_kernel.train.dio_mini import build_dio_mini
    d = build_dio_mini(tmp_path / "dio", seed=0)
    tok = AutoTokenizer.from_pretrained(d)
    config = AutoConfig.from_pretrained(d)
    eos, pad = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert eos != pad and (config.eos_token_id, config.pad_token_id) == (eos, pad)
    gen = GenerationConfig.from_pretrained(d)
    assert gen.eos_token_id == [eos, pad] and gen.do_sample is False and gen.max_new_tokens == 64
    meta = json.loads((d / "dio_mini.json").read_text())
    from transformers import AutoModelForCausalLM
    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(d).parameters())
    assert meta == {"seed": 0, "parameters": n}
    assert tok.decode(tok("hello world, two words")["input_ids"]) == "hello world, two words"


def test_an_example_exactly_as_long_as_the_row_packs_alone():
    from realm_kernel.train.packing import masked_capacity, pack_indices
    assert pack_indices([4, 4, 2], 4) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="an example of 5 tokens exceeds the pack length 4"):
        pack_indices([5, 1], 4)
    # rows exactly min_fill full are full enough: 9 of 10 tokens at min_fill 0.9
    assert masked_capacity([9], 100, multiple=10, min_fill=0.9) == 10


def test_newton_schulz_keeps_the_shape_of_wide_and_tall_matrices():
    from realm_kernel.train.optim import zeropower_via_newtonschulz5
    g = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    for m in (g, g.T):
        out = zeropower_via_newtonschulz5(m)
        assert out.shape == m.shape
        small = min(m.shape)
        gram = out @ out.T if m.shape[0] == small else out.T @ out
        # Newton-Schulz's quintic lands near, not on, orthogonality (singular values ~0.7-1.2)
        assert torch.allclose(gram.diagonal(), torch.ones(small), atol=0.5)


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(dio_mini_dir):
    from transformers import AutoModelForCausalLM

    from realm_kernel.train.optim import MuonWithAdamW, build_optimizer, split_muon_params
    model = AutoModelForCausalLM.from_pretrained(dio_mini_dir)
    opt, name = build_optimizer(model, "muon", lr=1e-3, muon_lr=0.0, weight_decay=0.0)
    assert isinstance(opt, MuonWithAdamW) and name == "adamw_torch"
    muon, other = split_muon_params(model)
    grouped = [p for g in opt.param_groups for p in g["params"]]
    assert {id(p) for p in grouped} == {id(p) for p in [*muon, *other]}
    assert len(grouped) == len(muon) + len(other)
    assert {g["lr"] for g in opt.param_groups} == {1e-3}, "muon_lr 0: the same rate"
    hidden = muon[0]
    before = hidden.detach().clone()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert not torch.equal(hidden, before)


def test_lora_targets_the_named_modules_or_every_linear_one(dio_mini_dir):
    from transformers import AutoModelForCausalLM

    from realm_kernel.store.config import TrainingConfig
    from realm_kernel.train.lora import for_method

    def targeted(cfg):
        model = AutoModelForCausalLM.from_pretrained(dio_mini_dir, dtype=torch.bfloat16)
        peft = for_method(model, cfg)
        names = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in peft.named_parameters()
                 if ".lora_A" in n}
        frozen = {p.dtype for n, p in peft.named_parameters() if "lora_" not in n}
        return names, frozen

    some, frozen = targeted(TrainingConfig(method="lora", lora_targets=["q_proj", "v_proj"]))
    assert some == {"q_proj", "v_proj"}
    assert frozen == {torch.bfloat16}, "plain LoRA leaves the base in its dtype (no k-bit preparation)"
    every, _ = targeted(TrainingConfig(method="lora"))
    assert every == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    all_linear, _ = targeted(TrainingConfig(method="lora", lora_targets=["all-linear"]))
    assert all_linear == every, "peft's shorthand: every linear layer but the head"


def test_an_adapter_without_sidecar_or_tokenizer_loads_on_the_base_peft_names(dio_mini_dir, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from realm_kernel.train.loading import load_model_and_tokenizer
    from realm_kernel.train.lora import base_of
    base = AutoModelForCausalLM.from_pretrained(dio_mini_dir)
    base.config.name_or_path = str(dio_mini_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "ad")
    assert base_of(tmp_path / "ad") == dio_mini_dir
    model, tok = load_model_and_tokenizer(tmp_path / "ad", "float32", "sdpa", device="cpu")
    assert isinstance(model, PeftModel) and tok.chat_template and tok.eos_token == "<|im_end|>"


def test_an_adapter_saved_with_its_own_tokenizer_loads_that_tokenizer(dio_mini_dir, tmp_path):
    """A checkpoint of a LoRA run holds the tokenizer it trained with: that one is used,
    not the base's (here told apart by its chat template)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from realm_kernel.train.loading import load_model_and_tokenizer
    base = AutoModelForCausalLM.from_pretrained(dio_mini_dir)
    base.config.name_or_path = str(dio_mini_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "ad")
    own = AutoTokenizer.from_pretrained(dio_mini_dir)
    own.chat_template = own.chat_template + "{# the adapter's own #}"
    own.save_pretrained(tmp_path / "ad")
    _, tok = load_model_and_tokenizer(tmp_path / "ad", "float32", "sdpa", device="cpu")
    assert tok.chat_template.endswith("{# the adapter's own #}")


def test_quantization_config_is_nf4_with_double_quantisation():
    from realm_kernel.train.lora import quantization_config
    q = quantization_config(torch.bfloat16)
    assert (q.load_in_4bit, q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant,
            q.bnb_4bit_compute_dtype) == (True, "nf4", True, torch.bfloat16)


def test_model_presets_by_name_with_the_real_vocabulary_kept(dio_mini_dir, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    from realm_kernel.train.dio_mini import ARCH
    from realm_kernel.train.presets import PRESETS, init_from_config, qwen3_config
    c = qwen3_config("dio-mini", vocab_size=77)
    assert c.vocab_size == 77 and c.hidden_size == ARCH["hidden_size"]
    assert qwen3_config("qwen3-20m").vocab_size == PRESETS["qwen3-20m"]["vocab_size"]
    with pytest.raises(ValueError, match="unknown model preset 'x'"):
        qwen3_config("x")
    small = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=8)
    real = next(n for n, p in PRESETS.items() if p.get("vocab_size", 0) > 100_000)
    d = init_from_config(real, dio_mini_dir, tmp_path / "real", dtype=torch.bfloat16, **small)
    assert AutoConfig.from_pretrained(d).vocab_size == PRESETS[real]["vocab_size"]
    assert next(AutoModelForCausalLM.from_pretrained(d, dtype="auto").parameters()).dtype == torch.bfloat16
    d = init_from_config("qwen3-20m", dio_mini_dir, tmp_path / "cpu", **small)
    from transformers import AutoTokenizer
    assert AutoConfig.from_pretrained(d).vocab_size == len(AutoTokenizer.from_pretrained(dio_mini_dir))


def test_the_launch_command_rendezvous_on_loopback_at_the_given_port():
    from realm_kernel.train.ranks import launch_command, parallel_problem
    cmd = launch_command(2, "ddp", "realm_kernel.cli", ["train", "q.jsonl"], port=29501, cuda=False)
    at = cmd.index("--main_process_ip")
    assert cmd[at:at + 4] == ["--main_process_ip", "127.0.0.1", "--main_process_port", "29501"]
    assert parallel_problem("fsdp", cuda=False) == (
        "[training] parallel = 'fsdp' needs CUDA GPUs: accelerate runs CPU ranks as DDP, not "
        "sharded; set parallel = 'ddp' (or nproc = 1) on this machine")
    assert parallel_problem("fsdp", cuda=True) is None and parallel_problem("ddp", cuda=False) is None


def test_trackers_write_under_the_realm_home_one_folder_per_run(tmp_path):
    from realm_kernel.train.trackers import defaults
    got = defaults(["tensorboard", "mlflow", "wandb"], tmp_path, "run-7")
    assert got == {"TENSORBOARD_LOGGING_DIR": str(tmp_path / "trackers" / "tensorboard" / "run-7"),
                   "MLFLOW_TRACKING_URI": (tmp_path / "trackers" / "mlruns").resolve().as_uri(),
                   "MLFLOW_EXPERIMENT_NAME": "realm", "MLFLOW_ALLOW_FILE_STORE": "true",
                   "WANDB_DIR": str(tmp_path / "trackers"), "WANDB_PROJECT": "realm-of-training"}
    assert defaults([], tmp_path, "run-7") == {}


def test_an_events_error_is_its_first_line_or_its_type():
    from realm_kernel.train.retries import first_line
    assert first_line(RuntimeError("CUDA out of memory.\nTried to allocate")) == "CUDA out of memory."
    assert first_line(RuntimeError()) == "RuntimeError"


def test_a_nan_loss_is_logged_as_nan_for_the_loss_alarm(tmp_path):
    from realm_kernel.store.config import TrainingConfig
    from realm_kernel.train.training_args import training_arguments
    args = training_arguments(TrainingConfig(), output_dir=tmp_path, run_name="r", batch_size=1,
                              optim="adamw_torch", has_eval=False, report_to="none", cuda=False,
                              liger=False)
    assert args.logging_nan_inf_filter is False


def test_the_cpu_share_is_half_the_cores_and_idle_means_a_taskmaster_between_tasks(realm_home, monkeypatch):
    from realm_kernel.store.status import write_status
    from realm_kernel.train.threads import TASKMASTER_STATUS, all_cores, cpu_share, taskmaster_idle
    for cores, share in ((None, 1), (1, 1), (2, 1), (7, 3), (16, 8)):
        monkeypatch.setattr("os.cpu_count", lambda c=cores: c)
        assert cpu_share() == share and all_cores() == max(1, cores or 1)
    assert not taskmaster_idle(realm_home), "no Task Master: nothing to borrow"
    write_status(realm_home, TASKMASTER_STATUS, state="running")
    assert not taskmaster_idle(realm_home)
    write_status(realm_home, TASKMASTER_STATUS, state="idle")
    assert taskmaster_idle(realm_home)


def test_attention_and_liger_follow_the_settings_the_card_and_what_is_installed(monkeypatch):
    """`auto` picks by the card and the installed packages (here told which are, so both
    sides of each rule run on any machine); `on` without liger-kernel is refused."""
    from realm_kernel.store.config import TrainingConfig
    from realm_kernel.train import trainer
    have: set[str] = set()
    monkeypatch.setattr(trainer, "installed", lambda name: name in have)
    auto = TrainingConfig()
    assert trainer.resolve_attn(auto, cuda=False) == "sdpa_segments"
    assert trainer.resolve_attn(auto, cuda=True) == "sdpa"
    assert trainer.resolve_attn(TrainingConfig(attn_implementation="eager"), cuda=True) == "eager"
    assert trainer.resolve_liger(auto, cuda=True) is False
    with pytest.raises(RuntimeError, match=r"^liger = 'on' needs liger-kernel: pip install -e '\.\[gpu\]'$"):
        trainer.resolve_liger(TrainingConfig(liger="on"), cuda=False)
    have |= {"flash_attn", "liger_kernel"}
    assert trainer.resolve_attn(auto, cuda=True) == "flash_attention_2"
    assert trainer.resolve_attn(auto, cuda=False) == "sdpa_segments"
    assert trainer.resolve_liger(auto, cuda=True) is True
    assert not trainer.resolve_liger(auto, cuda=False)
    assert trainer.resolve_liger(TrainingConfig(liger="off"), cuda=True) is False
    assert trainer.resolve_liger(TrainingConfig(liger="on"), cuda=False) is True


def test_the_terminal_bar_counts_steps_from_the_resumed_one_and_shows_the_loss_and_xp(tmp_path):
    """`realm train`'s tqdm bar (callbacks.StepProgress), written to a real stream."""
    from types import SimpleNamespace

    from realm_kernel.train.callbacks import StepProgress
    state = SimpleNamespace(is_world_process_zero=True, max_steps=10, global_step=2)
    bar = StepProgress(offset=100)
    bar.on_train_begin(None, state, None)
    assert (bar.bar.total, bar.bar.n, bar.bar.unit, bar.bar.desc) == (10, 2, "step", "training")
    state.global_step = 5
    bar.on_log(None, state, None, logs={"loss": 1.23456})
    assert bar.bar.n == 5 and bar.bar.postfix == "loss=1.2346, xp=105"
    bar.on_log(None, state, None, logs={"eval_loss": 2.0})  # no training loss: the postfix stays
    assert bar.bar.postfix == "loss=1.2346, xp=105"
    state.global_step = 10
    bar.on_train_end(None, state, None)
    assert bar.bar is None
    other = StepProgress()
    other.on_train_begin(None, SimpleNamespace(is_world_process_zero=False, max_steps=10, global_step=0),
                         None)
    assert other.bar is None, "only the main process draws a bar"
