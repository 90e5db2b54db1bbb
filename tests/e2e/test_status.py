"""``triggerfish status`` against a running server: the parts of its data with their
size, the free space, and the retention it was started with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.cli import run
from support.server import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("status") / "data"
    server = Server(data, env={"TRIGGERFISH_RECORDS_RETENTION": "2d"}).start()
    yield server
    server.stop()


def test_status_as_json_and_for_people(server: Server) -> None:
    body = run(server, "status", "--json").json()
    assert [part["name"] for part in body["disk"]["parts"]] == [
        "bus",
        "store",
        "buckets",
        "artifacts",
        "environments",
    ]
    assert body["retention"]["records_retention"] == 2 * 86400

    shown = run(server, "status")
    assert shown.code == 0, shown.err
    for words in ("bus", "store", "buckets", "artifacts", "environments", "free on"):
        assert words in shown.out
    assert "records retention: 2d" in shown.out
