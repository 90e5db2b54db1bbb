"""Secrets against a running server and the real CLI: a function sees the value of a
secret its manifest refers to, every API shows only the reference, a missing secret or
server variable is refused at deploy, a rotation reaches the next call with no deploy,
a secret in use is not removed by mistake, and no value is ever written anywhere a
person or another process could read it: the server's log, the data directory (the
store holds values sealed), invocation records, API answers or the CLI's output."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.cluster import Cluster
from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

# Every value a test here gives the server; none may be found where it does not belong.
VALUES: dict[str, str] = {}


def value(label: str) -> str:
    VALUES[label] = f"tf-test-{label}-{secrets.token_hex(12)}"
    return VALUES[label]


READER = """
import hashlib, os

def handler(event, context):
    print("reader ran for", context.aws_request_id)
    seen = os.environ.get(event.get("variable", "DB_PASSWORD"), "")
    return {"sha256": hashlib.sha256(seen.encode()).hexdigest(), "length": len(seen),
            "stage": os.environ.get("STAGE"), "pid": os.getpid(),
            "every": sorted(hashlib.sha256(v.encode()).hexdigest() for v in os.environ.values())}
"""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def github_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def project(
    root: Path,
    functions: dict[str, dict[str, Any]] | None = None,
    webhooks: dict[str, Any] | None = None,
) -> Path:
    """A manifest of READER functions (name -> settings) and webhooks."""
    path = write_project(root, {name: (READER, s) for name, s in (functions or {}).items()})
    document = yaml.safe_load(path.read_text())
    if webhooks:
        document["webhooks"] = webhooks
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("secrets")
    server = Server(root / "data")
    server.start("--log-level", "debug")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reader(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The function ``reader`` deployed with DB_PASSWORD from the secret db-password
    and a webhook signed with the secret hook-key; the value of db-password."""
    password = value("db-password")
    # As `echo "$DB_PASSWORD" | triggerfish secrets set db-password`: the newline goes.
    server.cli("secrets", "set", "db-password", input=password + "\n", check=True)
    server.cli("secrets", "set", "hook-key", input=value("hook-key"), check=True)
    path = project(
        tmp_path_factory.mktemp("reader"),
        {"reader": {"environment": {"STAGE": "test", "DB_PASSWORD": {"secret": "db-password"}}}},
        {"gh": {"topic": "gh-events", "secret": {"secret": "hook-key"}, "format": "github"}},
    )
    server.cli("deploy", str(path), check=True)
    return password


def invoke(server: Server, function: str, **payload: Any) -> dict[str, Any]:
    with server.client() as api:
        response = api.post(f"/v1/functions/{function}/invoke", json=payload)
    assert response.status_code == 200, response.text
    assert "x-triggerfish-function-error" not in response.headers, response.text
    answer: dict[str, Any] = response.json()
    return answer


def post_webhook(server: Server, name: str, body: bytes, secret: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/webhooks/{name}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": github_signature(body, secret),
        },
    )


def test_a_function_sees_its_secret_and_the_apis_show_only_the_reference(
    server: Server, reader: str
) -> None:
    result = server.cli("invoke", "reader", "--json", check=True)
    answer = json.loads(result.stdout)["result"]
    assert answer["sha256"] == digest(reader)
    assert answer["length"] == len(reader)  # stdin's trailing newline is not part of it
    assert answer["stage"] == "test"
    # A secret the function does not refer to is nowhere in its environment.
    assert digest(VALUES["hook-key"]) not in answer["every"]

    with server.client() as api:
        function = api.get("/v1/functions/reader").json()
        (version,) = function["versions"]
        assert version["config"]["environment"] == {
            "STAGE": "test",
            "DB_PASSWORD": {"secret": "db-password"},
        }
        lambda_config = api.get("/2015-03-31/functions/reader").json()["Configuration"]
        assert lambda_config["Environment"]["Variables"] == {
            "STAGE": "test",
            "DB_PASSWORD": "secret:db-password",
        }
        listed = {s["name"]: s for s in api.get("/v1/secrets").json()["secrets"]}
    assert listed["db-password"]["used_by"] == [
        {"kind": "function", "name": "reader", "variables": ["DB_PASSWORD"]}
    ]
    assert listed["hook-key"]["used_by"] == [{"kind": "webhook", "name": "gh"}]
    assert set(listed["db-password"]) == {"name", "created_at", "updated_at", "used_by"}

    shown = server.cli("secrets", "ls", check=True).stdout
    assert "db-password" in shown
    assert "reader" in shown  # the table may wrap "function reader (DB_PASSWORD)"
    assert "DB_PASSWORD" in shown


def test_a_webhook_signs_with_a_secret_and_a_rotation_needs_no_deploy(
    server: Server, reader: str, tmp_path: Path
) -> None:
    old, body = VALUES["hook-key"], b'{"ref": "main"}'
    assert post_webhook(server, "gh", body, old).status_code == 202
    with server.client() as api:
        assert api.get("/v1/webhooks/gh").json()["secret"] == {"secret": "hook-key"}

    new_file = tmp_path / "hook-key.txt"
    new_file.write_text(value("hook-key-2"))  # --from-file keeps the file as it is
    done = server.cli("secrets", "set", "hook-key", "--from-file", str(new_file), check=True)
    assert "secret hook-key updated" in done.stdout

    assert post_webhook(server, "gh", body, old).status_code == 401
    assert post_webhook(server, "gh", body, VALUES["hook-key-2"]).status_code == 202


def test_a_literal_webhook_secret_is_kept_encrypted(server: Server, tmp_path: Path) -> None:
    literal = value("literal-hook")
    path = project(
        tmp_path,
        webhooks={"plain": {"topic": "plain-events", "secret": literal, "format": "github"}},
    )
    server.cli("deploy", str(path), check=True)

    assert post_webhook(server, "plain", b"{}", literal).status_code == 202
    with server.client() as api:
        assert api.get("/v1/webhooks/plain").json()["secret"] == "********"
    assert files_holding(server.data_dir, [literal]) == []


def test_a_literal_http_route_secret_is_kept_encrypted(server: Server, tmp_path: Path) -> None:
    literal = value("literal-route")
    route = {"route": "POST /signed-route", "auth": "hmac", "secret": literal}
    path = project(tmp_path, {"routed": {"triggers": [{"name": "signed", "http": route}]}})
    server.cli("deploy", str(path), check=True)

    body = b'{"amount": 10}'
    signature = hmac.new(literal.encode(), body, hashlib.sha256).hexdigest()
    with httpx.Client(base_url=server.url) as http:
        signed = http.post(
            "/fn/signed-route", content=body, headers={"X-Triggerfish-Signature": signature}
        )
        assert signed.status_code == 200, signed.text
        assert "pid" in signed.json()  # the function ran and answered
        forged = hmac.new(b"a guess", body, hashlib.sha256).hexdigest()
        refused = http.post(
            "/fn/signed-route", content=body, headers={"X-Triggerfish-Signature": forged}
        )
        assert refused.status_code == 401
    assert files_holding(server.data_dir, [literal]) == []


def test_a_missing_secret_or_server_variable_is_refused_at_deploy(
    server: Server, tmp_path: Path
) -> None:
    path = project(
        tmp_path / "function", {"needs": {"environment": {"API_KEY": {"secret": "not-set-yet"}}}}
    )
    refused = server.cli("deploy", str(path))
    assert refused.returncode == 2, refused.stderr
    error = " ".join(refused.stderr.split())  # Rich wraps long lines
    assert "environment.API_KEY: function 'needs'" in error
    assert "function 'needs' refers to the secret 'not-set-yet', which does not exist" in error
    assert "`triggerfish secrets set not-set-yet`" in error

    for name, secret, expected in [
        ("by-variable", "env:TF_TEST_NEVER_SET_VARIABLE", "env:TF_TEST_NEVER_SET_VARIABLE is not"),
        ("by-secret", {"secret": "no-such-hook-key"}, "the secret 'no-such-hook-key' does not"),
    ]:
        path = project(tmp_path / name, webhooks={name: {"topic": "t", "secret": secret}})
        refused = server.cli("deploy", str(path))
        assert refused.returncode == 2, refused.stderr
        assert expected in " ".join(refused.stderr.split())

    with server.client() as api:
        assert api.get("/v1/functions/needs").status_code == 404
        assert api.get("/v1/webhooks/by-variable").status_code == 404
        assert api.get("/v1/webhooks/by-secret").status_code == 404


def test_a_broker_url_naming_a_variable_the_server_lacks_is_refused_at_deploy(
    server: Server, tmp_path: Path
) -> None:
    url = "redis://:${TF_TEST_NEVER_SET_BROKER_PASSWORD}@localhost:6379/0"
    fix = "set it where `triggerfish up` runs and restart it, then deploy again"

    path = project(tmp_path / "sink")
    document = yaml.safe_load(path.read_text())
    path.write_text(
        yaml.safe_dump({**document, "brokers": {"cache": {"kind": "redis", "url": url}}})
    )
    refused = server.cli("deploy", str(path))
    assert refused.returncode == 2, refused.stderr  # a configuration error
    error = " ".join(refused.stderr.split())
    assert "brokers.cache.url: ${TF_TEST_NEVER_SET_BROKER_PASSWORD}" in error
    assert fix in error

    source = {"source": {"kind": "redis", "url": url, "stream": "orders"}}
    path = project(tmp_path / "source", {"fed": {"triggers": [source]}})
    refused = server.cli("deploy", str(path))
    assert refused.returncode == 2, refused.stderr
    error = " ".join(refused.stderr.split())
    assert "triggers[0].source.url: ${TF_TEST_NEVER_SET_BROKER_PASSWORD}" in error
    assert fix in error

    with server.client() as api:
        answer = api.put("/v1/brokers/cache", json={"kind": "redis", "url": url})
        assert answer.status_code == 400, answer.text
        assert "${TF_TEST_NEVER_SET_BROKER_PASSWORD}" in answer.json()["detail"]
        assert "cache" not in {b["name"] for b in api.get("/v1/brokers").json()["brokers"]}
        assert api.get("/v1/functions/fed").status_code == 404


def test_a_rotated_secret_reaches_a_new_environment_without_a_redeploy(
    server: Server, tmp_path: Path
) -> None:
    first = value("rotating")
    server.cli("secrets", "set", "rotating", input=first, check=True)
    settings = {"environment": {"TOKEN": {"secret": "rotating"}}, "min_warm": 1}
    server.cli("deploy", str(project(tmp_path, {"rotor": settings})), check=True)
    before = invoke(server, "rotor", variable="TOKEN")
    assert before["sha256"] == digest(first)

    second = value("rotating-2")
    server.cli("secrets", "set", "rotating", input=second, check=True)

    after = invoke(server, "rotor", variable="TOKEN")
    assert after["sha256"] == digest(second)
    assert after["pid"] != before["pid"]  # the warm environment was replaced
    with server.client() as api:
        assert len(api.get("/v1/functions/rotor").json()["versions"]) == 1


def test_a_secret_in_use_is_removed_only_with_force(server: Server, tmp_path: Path) -> None:
    server.cli("secrets", "set", "in-use", input=value("in-use"), check=True)
    path = project(
        tmp_path,
        {"user": {"environment": {"TOKEN": {"secret": "in-use"}}}},
        {"user-hook": {"topic": "user-events", "secret": {"secret": "in-use"}, "format": "github"}},
    )
    server.cli("deploy", str(path), check=True)

    refused = server.cli("secrets", "rm", "in-use")
    assert refused.returncode == 7, refused.stderr  # conflict
    error = " ".join(refused.stderr.split())
    assert "function user (TOKEN); webhook user-hook" in error
    assert "triggerfish secrets rm in-use --force" in error
    assert invoke(server, "user", variable="TOKEN")["sha256"] == digest(VALUES["in-use"])

    server.cli("secrets", "rm", "in-use", "--force", check=True)
    gone = server.cli("invoke", "user")
    assert gone.returncode == 3, gone.stderr
    assert "refers to the secret 'in-use', which does not exist" in " ".join(gone.stderr.split())
    assert post_webhook(server, "user-hook", b"{}", VALUES["in-use"]).status_code == 500
    with server.client() as api:
        assert "in-use" not in {s["name"] for s in api.get("/v1/secrets").json()["secrets"]}

    server.cli("secrets", "set", "in-use", input=value("in-use-again"), check=True)
    answer = invoke(server, "user", variable="TOKEN")
    assert answer["sha256"] == digest(VALUES["in-use-again"])


def test_anonymous_clients_can_neither_list_nor_change_secrets(server: Server) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/v1/secrets").status_code == 401
        assert anonymous.get("/v1/secrets/db-password").status_code == 401
        assert anonymous.put("/v1/secrets/db-password", json={"value": "x"}).status_code == 401
        assert anonymous.delete("/v1/secrets/db-password").status_code == 401


def test_bad_names_and_bodies_get_an_error_that_says_the_rule(server: Server) -> None:
    bad = server.cli("secrets", "set", "Not_Valid", input="x")
    assert bad.returncode == 2
    assert "lowercase letters, digits" in " ".join(bad.stderr.split())
    with server.client() as api:
        response = api.put("/v1/secrets/UPPER", json={"value": "x"})
        assert response.status_code == 400
        assert "a secret name of 1 to 128 characters" in response.json()["detail"]
        response = api.put("/v1/secrets/ok-name", json={"value": 5})
        assert response.status_code == 400
        response = api.put("/v1/secrets/ok-name", content=b"not json at all")
        assert response.status_code == 400
        assert "not json at all" not in response.text
    empty = server.cli("secrets", "set", "ok-name", input="")
    assert empty.returncode == 2
    assert "no value" in empty.stderr


def sees(node: Server, function: str, text: str) -> bool:
    """Whether ``function``, called through ``node``, has ``text`` in TOKEN now."""
    with node.client() as api:
        response = api.post(f"/v1/functions/{function}/invoke", json={"variable": "TOKEN"})
    return response.status_code == 200 and response.json().get("sha256") == digest(text)


@pytest.mark.integration
@pytest.mark.slow
def test_on_a_cluster_a_secret_set_through_one_node_is_in_force_on_the_others(
    tmp_path: Path,
) -> None:
    cluster = Cluster(tmp_path / "cluster", size=2)
    try:
        one, two = cluster.start().nodes
        first = value("cluster-token")
        one.cli("secrets", "set", "cluster-token", input=first, check=True)
        settings = {"environment": {"TOKEN": {"secret": "cluster-token"}}}
        one.cli("deploy", str(project(tmp_path / "p", {"clustered": settings})), check=True)
        wait_for(lambda: sees(two, "clustered", first), what="node two to run it")
        assert sees(one, "clustered", first)

        second = value("cluster-token-2")
        two.cli("secrets", "set", "cluster-token", input=second, check=True)
        assert sees(two, "clustered", second)  # in force on the node that set it at once
        wait_for(lambda: sees(one, "clustered", second), what="node one to see the rotation")

        for node in cluster.nodes:
            assert files_holding(node.data_dir, [first, second]) == []
            assert first not in node.output()
            assert second not in node.output()
    finally:
        cluster.close()


def files_holding(folder: Path, texts: list[str]) -> list[tuple[Path, str]]:
    """Each file under ``folder`` (databases, their WAL, logs, scratch space) that holds
    one of ``texts``, with the text."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [(path, text) for text in texts if text.encode() in data]
    return found


def test_no_value_is_ever_logged_recorded_or_answered(server: Server, reader: str) -> None:
    """Runs last: deploys, calls (sync and async), webhooks and rotations have all
    happened by now; every value given to the server is looked for everywhere."""
    invoke(server, "reader")
    server.cli("invoke", "reader", "--async", check=True)
    with server.client() as api:
        wait_for(
            lambda: (
                len(api.get("/v1/invocations", params={"function": "reader"}).json()["invocations"])
                >= 3
            ),
            what="the reader's invocation records",
        )
        answers = [
            api.get(path).text
            for path in (
                "/v1/functions",
                "/v1/functions/reader",
                "/v1/triggers",
                "/v1/secrets",
                "/v1/secrets/db-password",
                "/v1/webhooks",
                "/v1/invocations?function=reader&logs=true",
                "/2015-03-31/functions/reader",
                "/2015-03-31/functions",
                "/metrics",
            )
        ]
    outputs = [
        server.cli(*args, check=True).stdout
        for args in (("ls", "--json"), ("secrets", "ls", "--json"), ("invocations", "--json"))
    ]
    assert len(VALUES) >= 8
    for text in VALUES.values():
        for answer in answers + outputs:
            assert text not in answer
        assert text not in server.output()
    assert "reader ran for" in answers[6]  # the records and their logs were looked at
    assert files_holding(server.data_dir, list(VALUES.values())) == []
