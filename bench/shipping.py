"""Shipping checkpoints to an SFTP zone (store/shipping.py), on this machine.

1. Throughput: one weights-only checkpoint (a saved ~20M-parameter Qwen3, `--model`)
   shipped to the NAS (Debian's OpenSSH server on 127.0.0.1, tests/nas.py) by
   `ship_checkpoint` (fsspec's SFTP filesystem on paramiko in a child process,
   store/zone_copy.py; `.partial` then a rename) vs
   `scp -r` of the same folder to the same server with the same key, in the same run:
   one warm-up of each, then `--pairs` alternating pairs; MB/s medians and the median of
   the pairs' ratios (target >= 0.9x).
2. Training while shipping: dio-mini trained through TrainerEngine with a save every
   `--save-steps`, each checkpoint submitted to a running Shipper (as the daemon does),
   vs the same run with no shipping; tokens/s medians over alternating pairs (target
   >= 0.95x). How many checkpoints reached the NAS before the run ended says how much
   shipping overlapped the training.

Both sides of each figure run on the same loaded machine within the same minutes; the
load average before and after is in the figures, and the run's own wall time (`wall_s`:
the defaults were sized to stay under 10 minutes on the 2-core machine: 5 pairs of 30
steps took 809 s at a load average of about 20, so 20 steps).

    python bench/shipping.py [--pairs 5] [--model qwen3-20m] [--steps 20] [--save-steps 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fsspec.config  # noqa: E402
from common import alternating, load_average, report  # noqa: E402

from realm_kernel.store.checkpoints import resume_files  # noqa: E402
from realm_kernel.store.config import RealmConfig, TrainingConfig, VaultConfig  # noqa: E402
from realm_kernel.store.ledger import Ledger  # noqa: E402
from realm_kernel.store.paths import SIDECAR, RealmPaths, atomic_write_json  # noqa: E402
from realm_kernel.store.shipping import Shipper, ship_checkpoint  # noqa: E402
from realm_kernel.store.vault import VaultKeeper, dir_bytes  # noqa: E402
from realm_kernel.train import Job, TrainerEngine  # noqa: E402
from realm_kernel.train.dio_mini import build_dio_mini  # noqa: E402
from realm_kernel.train.mixed import mixed_examples  # noqa: E402
from realm_kernel.train.presets import init_from_config  # noqa: E402
from tests.helpers import Procs  # noqa: E402
from tests.nas import Nas  # noqa: E402

MB = 1e6


def checkpoint_home(tmp: Path, model_dir: Path, nas: Nas) -> tuple[VaultKeeper, Path]:
    """A realm home whose ledger knows one weights-only checkpoint: `model_dir` with a
    sidecar, and the NAS as zone "nas"."""
    paths = RealmPaths.at(tmp / "home").ensure()
    name = "checkpoint-100-20261206-1200"
    ckpt = paths.checkpoints / name
    shutil.copytree(model_dir, ckpt)
    for f in resume_files(ckpt):
        f.unlink()
    atomic_write_json(ckpt / SIDECAR, {"name": name, "step": 100})
    ledger = Ledger(paths, "bench")
    ledger.append("checkpoints", [{"name": name, "step": 100, "path": str(ckpt)}])
    vault = VaultKeeper(paths, ledger)
    vault.add_zone("nas", nas.url, confirmed=True)
    return vault, ckpt


def throughput(vault: VaultKeeper, ckpt: Path, nas: Nas, pairs: int) -> dict:
    nbytes = dir_bytes(ckpt)
    target = nas.root / "checkpoints"

    def fresh() -> None:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()

    def ours() -> float:
        fresh()
        t = time.perf_counter()
        assert ship_checkpoint(vault, 100, "nas") == "shipped"
        return nbytes / (time.perf_counter() - t) / MB

    def scp() -> float:
        fresh()
        t = time.perf_counter()
        subprocess.run(nas.scp_argv(ckpt, str(target / ckpt.name)), check=True)
        return nbytes / (time.perf_counter() - t) / MB

    ratios, mine, theirs = alternating(ours, scp, pairs)
    return {"checkpoint_mb": round(nbytes / MB, 1),
            "ship_mb_per_s": round(statistics.median(mine), 1),
            "scp_mb_per_s": round(statistics.median(theirs), 1),
            "ship_vs_scp_ratio": round(statistics.median(ratios), 3),
            "ship_vs_scp_pairs": [round(r, 3) for r in ratios]}


def training(tmp: Path, dio: Path, nas: Nas, steps: int, save_steps: int, pairs: int) -> dict:
    examples = mixed_examples(8 * steps + 64, seed=0)
    config = TrainingConfig(max_steps=steps, save_steps=save_steps, batch_size=8, max_length=256,
                            learning_rate=1e-3)
    runs = iter(range(10_000))
    shipped_during: list[int] = []

    def run(ship: bool) -> float:
        work = tmp / f"train-{next(runs)}"
        paths = RealmPaths.at(work).ensure()
        ledger = Ledger(paths, "bench")
        shipper = None
        if ship:
            (nas.root / work.name).mkdir()
            VaultKeeper(paths, ledger).add_zone("nas", f"{nas.url}/{work.name}", confirmed=True)
            shipper = Shipper.start(paths, ledger, RealmConfig(vault=VaultConfig(ship_to="nas")))
        job = Job(quest_id="bench.jsonl", examples=examples, model_path=dio, run_id="bench",
                  training=config, on_checkpoint=shipper.submit if shipper else None)
        result = TrainerEngine(paths, ledger).run_job(job)
        if shipper is not None:
            shipped_during.append(len(ledger.query(
                "SELECT step FROM asset_locations WHERE zone = 'nas'")))
            shipper.stop()
        if not result.success:
            raise SystemExit(result.error_message)
        return result.tokens_per_second

    ratios, mine, theirs = alternating(lambda: run(True), lambda: run(False), pairs)
    return {"train_steps": steps, "save_steps": save_steps,
            "tokens_per_s_shipping": round(statistics.median(mine), 1),
            "tokens_per_s_not_shipping": round(statistics.median(theirs), 1),
            "shipping_vs_not_ratio": round(statistics.median(ratios), 3),
            "shipping_vs_not_pairs": [round(r, 3) for r in ratios],
            "checkpoints_saved_per_run": steps // save_steps,
            "checkpoints_on_nas_at_run_end": shipped_during}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--model", default="qwen3-20m",
                    help="the shipped checkpoint: a preset of train/presets.py, or dio-mini")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--save-steps", type=int, default=5)
    ap.add_argument("--note", default="", help="what else ran on the machine")
    ap.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    args = ap.parse_args()
    load_before = load_average()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="realm-bench-shipping-") as t:
        tmp = Path(t)
        procs = Procs(tmp)
        try:
            nas = Nas(procs, tmp / "nas")
            fsspec.config.conf["sftp"] = nas.client_options()  # the key, as FSSPEC_SFTP gives it
            dio = build_dio_mini(tmp / "dio-mini")
            model = dio if args.model == "dio-mini" else init_from_config(args.model, dio,
                                                                           tmp / args.model)
            vault, ckpt = checkpoint_home(tmp, model, nas)
            figures = throughput(vault, ckpt, nas, args.pairs)
            figures.update(training(tmp, dio, nas, args.steps, args.save_steps, args.pairs))
        finally:
            procs.stop_all()
    figures.update(load_before=load_before, load_after=load_average(), pairs=args.pairs,
                   wall_s=round(time.perf_counter() - started),
                   model=args.model, note=args.note)
    from common import ROOT
    figures["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                       capture_output=True, text=True).stdout.strip()
    summary = (
        f"SFTP zone on 127.0.0.1 (OpenSSH): a {figures['checkpoint_mb']} MB weights-only "
        f"{args.model} checkpoint shipped at {figures['ship_mb_per_s']} MB/s vs scp -r "
        f"{figures['scp_mb_per_s']} MB/s = {figures['ship_vs_scp_ratio']}x (median of pairs "
        f"{figures['ship_vs_scp_pairs']}; target >= 0.9x); dio-mini training while shipping "
        f"each checkpoint (every {args.save_steps} of {args.steps} steps) "
        f"{figures['tokens_per_s_shipping']} vs {figures['tokens_per_s_not_shipping']} tok/s "
        f"= {figures['shipping_vs_not_ratio']}x (pairs {figures['shipping_vs_not_pairs']}; "
        f"target >= 0.95x; checkpoints on the NAS at run end {figures['checkpoints_on_nas_at_run_end']}"
        f" of {figures['checkpoints_saved_per_run']}); {args.pairs} alternating pairs after a "
        f"warm-up; load average {load_before} -> {figures['load_after']}; {figures['wall_s']} s; "
        f"commit {figures['commit']}"
        + (f"; {args.note}" if args.note else ""))
    report("shipping", figures, summary, args.out)


if __name__ == "__main__":
    main()
