"""One battle over several local processes (ranks): how many, how a step's batch is split
between them, what rank 0 alone does, and the `accelerate launch` command that starts them.

accelerate (through HF Trainer) does the distributed work: DDP, or FSDP with a full state
dict gathered on rank 0 at each save, gloo on a CPU and NCCL on GPUs. What the realm adds
is its own rules: rank 0 is the one ledger writer, every rank obeys the same control-file
decision at the same step (rank 0's), and a checkpoint is published only once every rank
has written its part of it.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from ..store.config import TrainingConfig
from ..store.ledger import Ledger


def world_size() -> int:
    """The ranks of this run (accelerate/torchrun set WORLD_SIZE in each)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_nproc(cfg: TrainingConfig) -> int:
    """`[training] nproc`, or 0 = one rank per visible GPU (CUDA_VISIBLE_DEVICES counts), 1
    on a CPU."""
    if cfg.nproc:
        return cfg.nproc
    import torch
    return torch.cuda.device_count() or 1


def per_rank(per_step: int, world: int) -> int:
    """Rows each rank takes of a step's per_step rows: the step's batch is split, not
    multiplied, so a step (one XP) holds the same examples at any rank count (exactly when
    world divides per_step; else each rank takes the rounded-up share)."""
    return max(1, -(-per_step // world))


def agree(flags: Sequence[bool], world: int) -> list[bool]:
    """Rank 0's flags on every rank. A control file read by each rank could be seen at
    different steps, and a rank that stops while another steps on waits forever in the
    next all-reduce; so every rank takes rank 0's reading, at the same step."""
    if world <= 1:
        return list(flags)
    import torch
    import torch.distributed as dist
    t = torch.tensor([int(f) for f in flags], dtype=torch.int32)
    dist.broadcast(t, src=0)
    return [bool(v) for v in t.tolist()]


def barrier(world: int) -> None:
    """Every rank here before any goes on (a checkpoint is published once all have written
    their share of it: the rng state of each rank, FSDP's gathered weights)."""
    if world > 1:
        import torch.distributed as dist
        dist.barrier()


class RankLedger(Ledger):
    """The ledger as a rank other than 0 sees it: it reads the realm (held-out sets, the
    hero's step) but writes nothing; rank 0 is the one writer of a battle's rows and
    events, so each is recorded once."""

    def append(self, table: str, rows: Sequence[dict]) -> Path | None:
        return None


def parallel_problem(parallel: str, cuda: bool) -> str | None:
    """Why this machine cannot train as `[training] parallel` asks, or None. accelerate
    runs CPU ranks as MULTI_CPU (plain DDP over gloo) whatever FSDP flags it is given
    (measured here: a 2-rank "fsdp" battle ran DDP's reducer), so FSDP on a CPU would
    silently be something else; it is refused instead, as a setup fault."""
    if parallel == "fsdp" and not cuda:
        return ("[training] parallel = 'fsdp' needs CUDA GPUs: accelerate runs CPU ranks as "
                "DDP, not sharded; set parallel = 'ddp' (or nproc = 1) on this machine")
    return None


def free_port() -> int:
    """A free TCP port on loopback for the ranks' rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(nproc: int, parallel: str, module: str, args: Sequence[str], *,
                   port: int, cuda: bool) -> list[str]:
    """`accelerate launch` of `python -m module args` as nproc ranks on this machine, its
    rendezvous on 127.0.0.1 (nothing listens beyond loopback). `--multi_gpu` is accelerate's
    torchrun launcher; on a CPU each rank joins a gloo group (HF Trainer asks accelerate
    for the CPU there). FSDP gathers a full state dict on rank 0 at each save, so every
    checkpoint is a complete `model.safetensors`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(nproc),
           "--num_machines", "1", "--machine_rank", "0", "--main_process_ip", "127.0.0.1",
           "--main_process_port", str(port), "--dynamo_backend", "no",
           # the realm's own [training] dtype decides precision, as in one process
           "--mixed_precision", "no"]
    if parallel == "fsdp":
        cmd += ["--use_fsdp", "--fsdp_version", "2", "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
                "--fsdp_state_dict_type", "FULL_STATE_DICT", "--fsdp_cpu_ram_efficient_loading", "false",
                "--fsdp_reshard_after_forward", "true"]
    else:
        cmd += ["--multi_gpu"]
    if not cuda:
        cmd += ["--num_cpu_threads_per_process", "1"]
    return [*cmd, "-m", module, *args]
