"""Optimizers by config: fused AdamW, Muon for 2-D hidden weights with AdamW for the
rest, and bitsandbytes' paged 8-bit AdamW where it is installed."""

from __future__ import annotations

from typing import Any

import torch

# Muon orthogonalises updates of 2-D hidden weights; embeddings, the head, norms and
# biases are not such matrices and stay with AdamW.
MUON_EXCLUDE = ("embed_tokens", "lm_head", "wte", "wpe")


def split_muon_params(model: torch.nn.Module) -> tuple[list, list]:
    muon, other = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hidden = p.ndim == 2 and not any(x in name for x in MUON_EXCLUDE)
        (muon if hidden else other).append(p)
    return muon, other


def zeropower_via_newtonschulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Reference quintic Newton-Schulz iteration (Keller Jordan's Muon), for tests."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    x = g.float()
    transposed = x.size(0) > x.size(1)
    if transposed:
        x = x.T
    x = x / (x.norm() + eps)
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if transposed else x


class MuonWithAdamW(torch.optim.Optimizer):
    """One optimizer (so HF schedulers, checkpointing and resume just work) that steps
    torch's own Muon on group 0 and AdamW on group 1. The inner optimizers share this
    optimizer's param-group dicts and state, so the LR schedule reaches both."""

    def __init__(self, muon_params: list, adamw_params: list, *, lr: float, muon_lr: float,
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, momentum: float = 0.95) -> None:
        if not hasattr(torch.optim, "Muon"):
            raise RuntimeError("this torch has no torch.optim.Muon (needs torch >= 2.9)")
        groups = [{"params": muon_params, "lr": muon_lr, "muon": True},
                  {"params": adamw_params, "lr": lr, "muon": False}]
        groups = [g for g in groups if g["params"]]
        super().__init__(groups, {"lr": lr, "weight_decay": weight_decay})
        self._cfg = dict(weight_decay=weight_decay, betas=betas, eps=eps, momentum=momentum)
        self._bind()

    def _bind(self) -> None:
        cfg = self._cfg
        fused = all(p.is_cuda for g in self.param_groups for p in g["params"])
        self._inner = []
        for g in self.param_groups:
            if g["muon"]:
                # match_rms_adamw scales the orthogonal update to AdamW's RMS, so the
                # same learning rate (and schedule) suits both groups.
                opt = torch.optim.Muon([g], lr=g["lr"], weight_decay=cfg["weight_decay"],
                                       momentum=cfg["momentum"], adjust_lr_fn="match_rms_adamw")
            else:
                opt = torch.optim.AdamW([g], lr=g["lr"], betas=cfg["betas"], eps=cfg["eps"],
                                        weight_decay=cfg["weight_decay"], fused=fused or None)
            opt.state = self.state
            self._inner.append(opt)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for opt in self._inner:
            opt.step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._bind()  # load_state_dict replaces the group dicts and the state


def build_optimizer(model: torch.nn.Module, name: str, *, lr: float, muon_lr: float,
                    weight_decay: float) -> tuple[torch.optim.Optimizer | None, str]:
    """(optimizer, HF optim name). None means: let HF Trainer build `optim` itself."""
    if name == "adamw":
        fused = next(model.parameters()).is_cuda
        return None, "adamw_torch_fused" if fused else "adamw_torch"
    if name == "paged_adamw_8bit":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            raise RuntimeError("optimizer 'paged_adamw_8bit' needs bitsandbytes: "
                               "pip install -e '.[gpu]' on a CUDA machine") from e
        return None, "paged_adamw_8bit"
    if name == "muon":
        muon, other = split_muon_params(model)
        return MuonWithAdamW(muon, other, lr=lr, muon_lr=muon_lr or lr,
                             weight_decay=weight_decay), "adamw_torch"
    raise ValueError(f"unknown optimizer {name!r}")
