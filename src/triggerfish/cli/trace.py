"""``triggerfish trace ID``: the chain of an event or an invocation, as a tree.

Each event is shown under the invocation that emitted it, each invocation under the
event it handled; a node reached a second time (an invocation of a batch of events)
is named again without its children. ``--json`` prints the API's answer
(``GET /v1/chains/{id}``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, duration, print_json
from triggerfish.config import load_settings

FAILED = ("error", "timeout", "oom", "crashed", "throttled")


def trace(
    id: Annotated[str, typer.Argument(help="an event id or an invocation id")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="at most this many steps")] = 500,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow the chain of an event or invocation: what caused it and what it caused."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        chain = api.json("GET", f"/v1/chains/{id}", params={"limit": limit})
    if as_json:
        print_json(chain)
        return
    console.print(chain_tree(chain))
    failed = sum(1 for n in chain["nodes"] if n["kind"] == "invocation" and n["status"] in FAILED)
    steps = sum(1 for n in chain["nodes"] if n["kind"] == "invocation")
    summary = f"{steps} invocation(s), {len(chain['nodes']) - steps} event(s)"
    if failed:
        summary += f", [red]{failed} failed[/]"
    if chain["truncated"]:
        summary += f"; [yellow]more than {len(chain['nodes'])} steps, the oldest shown[/]"
    console.print(summary)


def chain_tree(chain: dict[str, Any]) -> Tree:
    nodes = {node["id"]: node for node in chain["nodes"]}
    children: dict[str, list[str]] = defaultdict(list)
    has_parent: set[str] = set()
    for edge in chain["edges"]:
        children[edge["from"]].append(edge["to"])
        has_parent.add(edge["to"])
    title = f"chain [bold]{escape(chain['correlation'] or chain['id'])}[/]"
    tree = Tree(title)
    shown: set[str] = set()

    def add(branch: Tree, node_id: str) -> None:
        node = nodes[node_id]
        if node_id in shown:
            branch.add(f"{label(node, asked=chain['id'])} [dim](above)[/]")
            return
        shown.add(node_id)
        twig = branch.add(label(node, asked=chain["id"]))
        for child in children.get(node_id, ()):
            add(twig, child)

    for node in chain["nodes"]:  # oldest first
        if node["id"] not in has_parent:
            add(tree, node["id"])
    for node in chain["nodes"]:  # parts of a cycle, if a function emitted an event twice
        if node["id"] not in shown:
            add(tree, node["id"])
    return tree


def label(node: dict[str, Any], *, asked: str) -> str:
    here = " [bold cyan]<-[/]" if node["id"] == asked else ""
    if node["kind"] == "event":
        return (
            f"[blue]event[/] {escape(node['type'])} on [bold]{escape(node['topic'])}[/] "
            f"[dim]{escape(node['id'])} {escape(node['time'] or '')}[/]{here}"
        )
    status = node["status"]
    mark = "[red]x[/]" if status in FAILED else "[green]ok[/]"
    extra = [duration(node["duration_ms"])]
    if node["attempt"] > 1:
        extra.append(f"attempt {node['attempt']}")
    if node["cold_start"]:
        extra.append("cold")
    if node["error_type"]:
        extra.append(f"[red]{escape(node['error_type'])}[/]")
    status_text = f"[red]{status}[/]" if status in FAILED else status
    return (
        f"{mark} [bold]{escape(node['function'])}[/]:{node['version']} {status_text} "
        f"{', '.join(extra)} [dim]{node['id']}[/]{here}"
    )
