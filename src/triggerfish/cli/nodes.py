"""``triggerfish nodes``: the nodes of a cluster, their state, heartbeat and load."""

from __future__ import annotations

from triggerfish.cli.client import Client
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import print_json, table, when
from triggerfish.config import load_settings


def nodes(
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the nodes sharing the server's store: a node whose heartbeat stopped is gone."""
    with Client(load_settings({"data_dir": data_dir})) as api:
        body = api.json("GET", "/v1/nodes")
    if as_json:
        print_json(body)
        return
    rows = []
    for node in body["nodes"]:
        info = node["info"]
        rows.append(
            (
                node["id"] + (" *" if node["this"] else ""),
                node["address"],
                node["version"],
                node["state"],
                f"{node['heartbeat_age']:.1f} s",
                info.get("warm", ""),
                info.get("busy", ""),
                info.get("waiting", ""),
                str(info.get("sandbox", "")).partition(" ")[0],
                when(node["started_at"]),
            )
        )
    table(
        None,
        [
            "node",
            "address",
            "version",
            "state",
            "heartbeat",
            "warm",
            "busy",
            "waiting",
            "sandbox",
            "up since",
        ],
        rows,
    )
