"""`realm cluster`: where the realm's tasks run (docs/cluster.md): one machine, or the
nodes of a Ray cluster with their resources and what each runs now."""

from __future__ import annotations

import typer

from .common import guarded, open_realm, print_json

app = typer.Typer(help="Cluster mode: the Ray cluster's nodes and what each runs.",
                  no_args_is_help=True)


def _resources(res: dict) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(res.items())) or "—"


def node_lines(node: dict) -> list[str]:
    """One node as `realm cluster status` prints it."""
    state = "alive" if node["alive"] else "gone "
    lines = [f"{state} {node['node_id'][:12]}  {node.get('address') or '?'}  "
             f"roles: {', '.join(node['roles']) or '—'}",
             f"       resources: {_resources(node['resources'])}",
             f"       in use:    {_resources(node['in_use'])}"]
    lines += [f"       running:   {t.get('task')} {t.get('checkpoint')} (step {t.get('step')})"
              for t in node["running"]]
    return lines


@app.command("status")
def cluster_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """The engine ([cluster] in realm.toml) and, in cluster mode, every node: its
    resources, what is in use and the realm tasks it runs."""
    st = guarded(open_realm().tasks.cluster, strict=True)
    if as_json:
        print_json(st)
        return
    typer.echo(f"engine: {st['engine']}" + (f"  address: {st['address']}" if "address" in st else ""))
    typer.echo(st.get("detail", ""))
    for node in st.get("nodes", []):
        for line in node_lines(node):
            typer.echo(line)
