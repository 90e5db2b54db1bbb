"""Reading ``GET /metrics`` of a running server in tests."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.server import Server

#: Every sample of a scrape: (metric name, its labels) -> value.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server) -> Samples:
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The one series of ``name`` whose labels include ``labels``; None when none is."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} series"
    return found[0] if found else None
