import math

import pytest
import torch

from realm_kernel.train.optim import (
    MuonWithAdamW,
    build_optimizer,
    split_muon_params,
    zeropower_via_newtonschulz5,
)


def test_newton_schulz_reference_orthogonalises():
    g = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    s = torch.linalg.svdvals(zeropower_via_newtonschulz5(g))
    assert s.min() > 0.5 and s.max() < 1.3, "singular values pushed towards 1"


def test_muon_step_matches_reference_newton_schulz():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(48, 24))
    b = torch.nn.Parameter(torch.randn(24))
    opt = MuonWithAdamW([w], [b], lr=0.01, muon_lr=0.02, weight_decay=0.0)
    w0, g = w.detach().clone(), torch.randn(48, 24)
    w.grad, b.grad = g.clone(), torch.randn(24)
    opt.step()
    momentum = 0.95
    nesterov = g.lerp((1 - momentum) * g, momentum)  # first step: buffer = (1-m) g
    expected = 0.02 * 0.2 * math.sqrt(48) * zeropower_via_newtonschulz5(nesterov)
    got = w0 - w.detach()
    cos = torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0)
    assert cos > 0.999 and (got - expected).norm() / expected.norm() < 5e-2
    assert opt.state[b]["step"] == 1


def test_params_split_hidden_matrices_from_the_rest(dio_mini_dir):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(dio_mini_dir)
    muon, other = split_muon_params(model)
    names = {id(p): n for n, p in model.named_parameters()}
    muon_names = {names[id(p)] for p in muon}
    other_names = {names[id(p)] for p in other}
    assert all(p.ndim == 2 for p in muon)
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert any(proj in n for n in muon_names)
    assert any("embed_tokens" in n for n in other_names)
    assert any("norm" in n for n in other_names) and not any("norm" in n for n in muon_names)


def test_schedule_state_and_resume_reach_both_groups():
    w = torch.nn.Parameter(torch.randn(8, 8))
    b = torch.nn.Parameter(torch.randn(8))
    opt = MuonWithAdamW([w], [b], lr=0.1, muon_lr=0.2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
    assert [g["lr"] for g in opt._inner[0].param_groups] == [0.1]
    assert [g["lr"] for g in opt._inner[1].param_groups] == [0.05]
    w.grad, b.grad = torch.randn(8, 8), torch.randn(8)
    opt.step()
    sched.step()
    again = MuonWithAdamW([w], [b], lr=0.1, muon_lr=0.2)
    again.load_state_dict(opt.state_dict())
    assert again._inner[1].state is again.state and again.state[b]["step"] == 1
    assert torch.equal(again.state[w]["momentum_buffer"], opt.state[w]["momentum_buffer"])


def test_paged_8bit_needs_bitsandbytes(monkeypatch):
    """Without bitsandbytes (hidden from the import system where it is installed): a
    clear error naming the package."""
    import sys
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import raises ImportError
    with pytest.raises(RuntimeError, match="needs bitsandbytes"):
        build_optimizer(torch.nn.Linear(2, 2), "paged_adamw_8bit", lr=1e-3, muon_lr=0, weight_decay=0)


def test_adamw_is_fused_exactly_on_cuda_parameters():
    name = build_optimizer(torch.nn.Linear(2, 2), "adamw", lr=1e-3, muon_lr=0, weight_decay=0)
    assert name == (None, "adamw_torch")
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        build_optimizer(torch.nn.Linear(2, 2), "lion", lr=1e-3, muon_lr=0, weight_decay=0)
