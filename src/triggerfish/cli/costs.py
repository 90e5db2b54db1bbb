"""``triggerfish costs``: requests, GB-seconds and the estimated price, per function.

Times (``--since``, ``--until``) are Unix seconds, an ISO 8601 date or time (UTC unless
it says otherwise), or a duration ago: ``90s``, ``15m``, ``24h``, ``7d``, ``-3600``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from triggerfish.cli.client import Client, CliError
from triggerfish.cli.options import DataDirOpt, JsonOpt
from triggerfish.cli.output import console, print_json, table, when
from triggerfish.config import load_settings

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, *, now: float | None = None, option: str = "--since") -> float:
    """Unix seconds from what a person types (see the module docstring)."""
    now = time.time() if now is None else now
    value = text.strip()
    match = _AGO.match(value.lower())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return now + number if number < 0 else number
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option} {text!r}: expected Unix seconds, an ISO date or time, "
            "or a duration ago such as 24h or 7d",
            2,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def money(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


def costs(
    function: Annotated[
        str | None, typer.Option("--function", "-f", help="Only this function.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From: Unix time, ISO time, or 24h / 7d ago.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time.")] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sum requests, GB-seconds and the estimated price of invocations, per function."""
    params: dict[str, Any] = {}
    if function:
        params["function"] = function
    if since:
        params["since"] = parse_time(since, option="--since")
    if until:
        params["until"] = parse_time(until, option="--until")
    with Client(load_settings({"data_dir": data_dir})) as api:
        report = api.json("GET", "/v1/costs", params=params)
    if as_json:
        print_json(report)
        return
    rows = [*report["functions"], report["total"]] if report["functions"] else []
    table(
        _title(report),
        [
            "function",
            "requests",
            "errors",
            "throttled",
            "cold",
            "GB-s",
            "cost",
        ],
        (
            (
                "total" if row["function"] == "*" else row["function"],
                row["requests"],
                row["errors"],
                row["throttled"],
                row["cold_starts"],
                f"{row['gb_seconds']:.6f}",
                money(row["cost"]),
            )
            for row in rows
        ),
    )
    prices = report["prices"]
    console.print(
        f"prices: {money(prices['per_request'] * 1_000_000)} per million requests, "
        f"${prices['per_gb_second']:.10f} per GB-second ({report['currency']}); "
        "idle functions cost nothing",
        markup=False,
    )


def _title(report: dict[str, Any]) -> str:
    since, until = report.get("since"), report.get("until")
    if since is None and until is None:
        return "costs (all time)"
    return f"costs from {when(since) or 'the start'} to {when(until) or 'now'}"
