"""Training commands: the daemon in the foreground, the battle controls (status, pause,
resume, stop, skip), the VRAM estimate, a standalone `realm train` and the demo hero."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from ..hero_model import hub
from ..store.paths import RealmPaths
from .common import open_realm, print_json, working

app = typer.Typer()


@app.command("build-dio-mini")
def build_dio_mini_cmd(force: bool = False, seed: int = 0) -> None:
    """Build the CPU demo hero into <home>/models/dio-mini."""
    from ..train.dio_mini import build_dio_mini
    paths = RealmPaths.at().ensure()
    with working(f"Building dio-mini into {paths.dio_mini}"):
        built = build_dio_mini(paths.dio_mini, seed=seed, force=force)
    typer.echo(f"dio-mini at {built}")


@app.command()
def daemon() -> None:
    """Run the training daemon in the foreground."""
    from ..services.daemon import main
    raise typer.Exit(main(["--home", str(RealmPaths.at().home)]))


@app.command()
def status() -> None:
    """Hero stats and the battle status."""
    r = open_realm()
    print_json({"hero": r.hero(), "training": r.training.status(), "health": r.health()})


@app.command()
def pause() -> None:
    """Pause the battle at the next step boundary."""
    print_json(open_realm().training.control("pause"))


@app.command()
def resume() -> None:
    """Resume after pause or stop."""
    print_json(open_realm().training.control("resume"))


@app.command()
def stop() -> None:
    """Save a checkpoint and stop at the next step boundary; the quest goes back to its queue."""
    print_json(open_realm().training.control("stop"))


@app.command()
def skip() -> None:
    """Save a checkpoint and set the quest in training aside (failed/, reason 'skipped')."""
    print_json(open_realm().training.control("skip"))


@app.command()
def vram(model: str = typer.Argument("qwen3-0.6b", help="A preset (qwen3-0.6b, qwen3-4b, ...) "
                                     "or a local HF model directory."),
         seq_len: int = typer.Option(2048, "--seq-len"), batch_size: int = typer.Option(1, "--batch-size"),
         dtype: str = "bfloat16", optimizer: str = "adamw",
         checkpointing: bool = typer.Option(False, "--checkpointing"),
         liger: bool = typer.Option(False, "--liger"), as_json: bool = typer.Option(False, "--json"),
         method: str = typer.Option("full", help="full | lora | qlora"),
         lora_rank: int = typer.Option(16, "--lora-rank")) -> None:
    """Estimate the GPU memory of fine-tuning, full or LoRA/QLoRA (weights, grads, optimizer,
    activations, logits)."""
    from ..hero_model.vram import estimate, estimate_from_path
    from ..train.presets import PRESETS
    kwargs = dict(seq_len=seq_len, batch_size=batch_size, dtype=dtype, optimizer=optimizer,
                  gradient_checkpointing=checkpointing, liger=liger, method=method, lora_rank=lora_rank)
    try:
        est = estimate(PRESETS[model], **kwargs) if model in PRESETS else estimate_from_path(model, **kwargs)
    except (ValueError, FileNotFoundError, KeyError) as e:
        typer.echo(f"vram: {e}", err=True)
        raise typer.Exit(2) from e
    # Battles on this model record their measured peak beside the estimate (train/memory.py).
    from ..store.batch_fit import describe_peak, peaks_for
    from ..store.paths import RealmPaths
    measured = peaks_for(RealmPaths.at(None), model)
    if as_json:
        typer.echo(json.dumps({**est.as_dict(), **({"measured": measured} if measured else {})}, indent=2))
    else:
        typer.echo("\n".join([est.table(), *map(describe_peak, measured)]))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context, quest: Path,
          model: Path = typer.Option(None, help="Local HF model dir or hub id (default: the hero's "
                                     "base model)."),
          from_config: str = typer.Option(None, "--from-config",
                                          help="Random init from a preset: dio-mini, qwen3-0.6b, ..."),
          max_steps: int = typer.Option(None, "--max-steps"),
          optimizer: str = typer.Option(None, help="adamw | muon | paged_adamw_8bit"),
          packing: bool = typer.Option(None, "--packing/--no-packing"),
          accelerate_config: Path = typer.Option(None, "--accelerate-config",
                                                 help="Run under `accelerate launch` with this config "
                                                      "(multi-GPU, FSDP)."),
          nproc: int = typer.Option(0, "--nproc", help="Run N processes with torchrun (gloo on CPU, "
                                                       "NCCL on GPUs): plain DDP."),
          output_dir: Path = typer.Option(None, "--output-dir", help="The run's own realm home "
                                          "(checkpoints, ledger); default <home>/standalone/<run id>."),
          preset: str = typer.Option(None, "--preset", help="A training recipe: qwen3-4b-24gb (the "
                                     "seed's 4B full fine-tune on a 24 GB card)."),
          vram_gb: float = typer.Option(None, "--vram-gb", help="The card to check the VRAM estimate "
                                        "against (default: the CUDA device's memory)."),
          force: bool = typer.Option(False, "--force", help="Start even when the estimate exceeds "
                                     "the card.")) -> None:
    """Train on a quest file directly with TrainerEngine (no daemon), in a realm home of its
    own so DIO's checkpoints and stats are untouched; prints the TrainingResult.

    Example: realm train data.jsonl --preset qwen3-4b-24gb --model Qwen/Qwen3-4B"""
    if accelerate_config or nproc > 1:
        from ..train.ranks import free_port
        from ..train.standalone import new_run_id
        os.environ.setdefault("REALM_RUN_ID", new_run_id())  # one run (and folder) for every rank
        # Every process re-runs this command without the launch option; HF Trainer does the rest.
        argv = _without_options(sys.argv[1:], ("--accelerate-config", "--nproc"))
        launcher = (["accelerate.commands.launch", "--config_file", str(accelerate_config)]
                    if accelerate_config else
                    ["torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
                     f"--master_port={free_port()}"])
        cmd = [sys.executable, "-m", *launcher, "-m", "realm_kernel.cli", *argv]
        os.execvp(cmd[0], cmd)
    from ..train.standalone import TrainRefused, train_quest
    try:
        result = train_quest(quest, model=model, from_config=from_config, max_steps=max_steps,
                             optimizer=optimizer, packing=packing, output_dir=output_dir, preset=preset,
                             vram_gb=vram_gb, force=force, say=lambda m: typer.echo(m, err=True))
    except (TrainRefused, FileNotFoundError, hub.HubModelMissing) as e:
        typer.echo(f"train: {e}", err=True)
        raise typer.Exit(2) from e
    if result is not None:
        print_json(result.as_dict())
        raise typer.Exit(0 if result.success else 1)


def _without_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not a.startswith(tuple(f"{n}=" for n in names)):
            out.append(a)
    return out
