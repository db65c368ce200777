"""`realm vault`: assets across zones, retention, deleting and exporting checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import guarded, open_realm, print_json

app = typer.Typer(help="The VaultKeeper: assets across zones.", no_args_is_help=True)


@app.command("scan")
def vault_scan(zone: str = typer.Option("local", "--zone")) -> None:
    """Discover checkpoints, models, data and configs in a zone."""
    print_json(guarded(open_realm().vault.scan, zone))


@app.command("locate")
def vault_locate(asset_id: str) -> None:
    print_json(guarded(open_realm().vault.locate, asset_id).as_dict())


@app.command("fetch")
def vault_fetch(asset_id: str) -> None:
    """Copy an asset into the realm home from the best zone that has it."""
    typer.echo(guarded(open_realm().vault.fetch, asset_id))


@app.command("transfer")
def vault_transfer(asset_id: str, to_zone: str,
                   from_zone: str = typer.Option(None, "--from")) -> None:
    print_json(guarded(open_realm().vault.transfer, asset_id, to_zone, from_zone).as_dict())


@app.command("search")
def vault_search(type_: str = typer.Option(None, "--type"), q: str = typer.Option(None, "--q")) -> None:
    print_json(guarded(open_realm().vault.search, type_, q))


@app.command("stats")
def vault_stats() -> None:
    print_json(open_realm().vault.stats())


@app.command("zones")
def vault_zones() -> None:
    print_json(open_realm().vault.zones())


@app.command("add-zone")
def vault_add_zone(zone_id: str, url: str, detail: str = "",
                   yes: bool = typer.Option(False, "--yes", help="do not ask to confirm")) -> None:
    """A local folder or a storage URL (file://, sftp://, s3://, ...). The vault will read
    and write there, so it asks first (--yes answers for you)."""
    if not yes:
        typer.confirm(f"Add zone {zone_id!r} at {url}? The vault will copy assets to and from it",
                      abort=True)
    print_json(guarded(open_realm().vault.add_zone, zone_id, url, detail, confirmed=True))


@app.command("retention")
def vault_retention(apply: bool = typer.Option(False, "--apply",
                                               help="delete; without it, a dry run")) -> None:
    """Keep best N + latest N + every Kth checkpoint, never the champion or the one in use."""
    print_json(open_realm().vault.retention(dry_run=not apply))


@app.command("delete")
def vault_delete(step: int) -> None:
    """Delete one checkpoint from disk (never the champion or the one in use)."""
    print_json(guarded(open_realm().checkpoints.delete, step))


@app.command("export")
def vault_export(step: int, dest: Path = typer.Argument(
        None, help="a new folder (default: <realm home>/exports/<checkpoint name>)"),
        merge: bool = typer.Option(False, help="merge a LoRA adapter into its base (a full model)")) -> None:
    """Copy a checkpoint as a clean HF directory: weights, config, tokenizer only."""
    typer.echo(guarded(open_realm().checkpoints.export, step, dest, merge))
