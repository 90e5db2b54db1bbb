"""Credentials with scopes and resources against a running server, with real clients:
boto3 for the S3 and Lambda APIs, httpx for ``/v1``.

Each scope and each kind of resource restriction is tried once allowed and once
refused; a hostile function tries, with its own key, what its manifest does not grant;
a deleted function's key, an expired token and key, and revoked ones are refused; and
``tokens ls`` / ``keys ls`` show when each was last used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support.projects import write_project
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

ONCE = Config(retries={"total_max_attempts": 1})

TARGET = """
def handler(event, context):
    return {"target": True}
"""

# Tries one thing with the function's own key (the AWS_* variables Triggerfish gives
# it) and answers what happened.
HOSTILE = """
import json, os, urllib.error, urllib.request

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

ONCE = Config(retries={"total_max_attempts": 1})


def lam():
    return boto3.client("lambda", config=ONCE)


def s3():
    return boto3.client("s3", config=ONCE)


def publish(topic):
    url = os.environ["AWS_ENDPOINT_URL"] + "/v1/topics/" + topic + "/events"
    body = json.dumps({"specversion": "1.0", "id": "h1", "source": "hostile", "type": "t"})
    signed = AWSRequest("POST", url, data=body.encode(),
                        headers={"Content-Type": "application/cloudevents+json"})
    credentials = botocore.session.get_session().get_credentials()
    SigV4Auth(credentials, "triggerfish", os.environ["AWS_REGION"]).add_auth(signed)
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers=dict(signed.headers.items()))
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        raise ClientError({"Error": {"Code": str(exc.code),
                                     "Message": json.loads(exc.read())["detail"]},
                           "ResponseMetadata": {"HTTPStatusCode": exc.code}}, "Publish")


ATTEMPTS = {
    "update_alias": lambda: lam().update_alias(
        FunctionName="target", Name="live", FunctionVersion="1")["Name"],
    "create_alias": lambda: lam().create_alias(
        FunctionName="target", Name="evil", FunctionVersion="1")["Name"],
    "get_other": lambda: lam().get_function(FunctionName="other")["Configuration"],
    "invoke_other": lambda: lam().invoke(FunctionName="other")["Payload"].read().decode(),
    "invoke_target": lambda: lam().invoke(FunctionName="target")["Payload"].read().decode(),
    "read_private": lambda: s3().get_object(
        Bucket="private", Key="secret.txt")["Body"].read().decode(),
    "read_shared": lambda: s3().get_object(
        Bucket="shared", Key="in/a.txt")["Body"].read().decode(),
    "write_out": lambda: s3().put_object(Bucket="shared", Key="out/h.txt", Body=b"h")["ETag"],
    "write_in": lambda: s3().put_object(Bucket="shared", Key="in/h.txt", Body=b"h")["ETag"],
    "list_buckets": lambda: [b["Name"] for b in s3().list_buckets()["Buckets"]],
    "publish_orders": lambda: publish("orders"),
    "publish_payments": lambda: publish("payments"),
    "credentials": lambda: [os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]],
}


def handler(event, context):
    try:
        return {"ok": ATTEMPTS[event["try"]]()}
    except ClientError as exc:
        return {"error": exc.response["Error"]["Code"],
                "message": exc.response["Error"].get("Message", "")}
"""

HOSTILE_PERMISSIONS = {
    "buckets": {"read": ["shared/in/*"], "write": ["shared/out/*"]},
    "publish": ["orders"],
    "invoke": ["target"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("credentials")
    manifest = write_project(
        root / "project",
        {
            "target": (TARGET, {"environment": {"NOTE": "target-env"}}),
            "other": (TARGET, {"environment": {"NOTE": "other-private"}}),
            "hostile": (HOSTILE, {"timeout": 30, "permissions": HOSTILE_PERMISSIONS}),
            "doomed": (HOSTILE, {"permissions": {"buckets": {"read": ["shared"]}}}),
            "shifty": (HOSTILE, {"permissions": {"buckets": {"read": ["shared"]}}}),
        },
        topics={"orders": {}, "payments": {}},
    )
    server = Server(root / "data").start()
    server.root = root  # type: ignore[attr-defined]
    try:
        server.cli("deploy", str(manifest), check=True)
        admin = s3_client(server, new_key(server, "setup"))
        for bucket in ("shared", "private"):
            admin.create_bucket(Bucket=bucket)
        admin.put_object(Bucket="shared", Key="in/a.txt", Body=b"shared in")
        admin.put_object(Bucket="private", Key="secret.txt", Body=b"private")
        yield server
    finally:
        server.stop()


# -- helpers ------------------------------------------------------------------------------


def new_key(server: Server, name: str, *args: str) -> tuple[str, str]:
    body = json.loads(
        server.cli("keys", "create", "--name", name, *args, "--json", check=True).stdout
    )
    return body["id"], body["secret"]


def new_token(server: Server, *args: str) -> str:
    body = json.loads(server.cli("tokens", "create", *args, "--json", check=True).stdout)
    token: str = body["token"]
    return token


def s3_client(server: Server, key: tuple[str, str]) -> BaseClient:
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="us-east-1",
        config=ONCE,
    )


def lambda_client(server: Server, key: tuple[str, str]) -> BaseClient:
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        region_name="us-east-1",
        config=ONCE,
    )


def bearer(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def refused(call: Any, code: str = "AccessDenied") -> str:
    """The message of the ClientError ``call()`` raises, checking its code."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == code, error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(error.get("Message", ""))


def event(n: int = 1) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "source": "tests", "type": "t"}


def publish(api: httpx.Client, topic: str) -> httpx.Response:
    return api.post(
        f"/v1/topics/{topic}/events",
        json=event(),
        headers={"Content-Type": "application/cloudevents+json"},
    )


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail: str = response.json()["detail"]
    return detail


def attempt(server: Server, function: str, what: str) -> dict[str, Any]:
    with server.client() as api:
        response = api.post(f"/v1/functions/{function}/invoke", json={"try": what})
    assert response.status_code == 200, response.text
    assert "x-triggerfish-function-error" not in response.headers, response.text
    result: dict[str, Any] = response.json()
    return result


# -- tokens: each scope, each resource restriction ------------------------------------------


def test_a_publish_token_publishes_only_to_its_topic(server: Server) -> None:
    token = new_token(server, "--scope", "publish", "--topic", "orders", "--expires", "30d")
    with bearer(server, token) as api:
        assert publish(api, "orders").status_code == 202
        detail = problem(publish(api, "payments"), 403)
        assert "lacks 'publish' on topic 'payments'" in detail
        assert "covers only orders" in detail
        assert "lacks the 'read' scope" in problem(api.get("/v1/topics"), 403)


def test_publish_on_every_topic_excludes_triggerfish_s_own(server: Server) -> None:
    token = new_token(server, "--scope", "publish")
    with bearer(server, token) as api:
        assert publish(api, "payments").status_code == 202
        # _invoke.<f> would start the function: that takes invoke, not publish.
        assert "topic '_invoke.target'" in problem(publish(api, "_invoke.target"), 403)


def test_an_invoke_token_calls_only_its_function_and_qualifier(server: Server) -> None:
    token = new_token(server, "--scope", "invoke", "--function", "target:live")
    with bearer(server, token) as api:
        ran = api.post("/v1/functions/target/invoke", json={})
        assert ran.status_code == 200
        assert ran.json() == {"target": True}
        other = problem(api.post("/v1/functions/other/invoke", json={}), 403)
        assert "lacks 'invoke' on function 'other' (qualifier live)" in other
        version = api.post("/v1/functions/target/invoke", params={"qualifier": "1"}, json={})
        assert "function 'target' (qualifier 1)" in problem(version, 403)
        assert "lacks the 'deploy' scope" in problem(api.delete("/v1/functions/target"), 403)
    # The same token on the Lambda API, as a Bearer token.
    lambda_path = "/2015-03-31/functions/{}/invocations"
    with bearer(server, token) as api:
        assert api.post(lambda_path.format("target"), content=b"{}").status_code == 200
        denied = api.post(lambda_path.format("other"), content=b"{}")
        assert denied.status_code == 403
        assert denied.headers["x-amzn-errortype"] == "AccessDeniedException"


def test_a_deploy_token_changes_only_its_function(server: Server) -> None:
    token = new_token(server, "--scope", "deploy", "--function", "target")
    with bearer(server, token) as api:
        moved = api.put("/v1/functions/target/aliases/stable", json={"version": 1})
        assert moved.status_code == 200, moved.text
        other = api.put("/v1/functions/other/aliases/stable", json={"version": 1})
        assert "lacks 'deploy' on function 'other'" in problem(other, 403)
        # A change that names no function (a topic) needs deploy on everything.
        assert "lacks 'deploy' on everything" in problem(api.put("/v1/topics/new", json={}), 403)
        # Issuing credentials needs admin: a token cannot grant more than it holds.
        made = api.post("/v1/tokens", json={"name": "escalate", "scopes": ["admin"]})
        assert "lacks the 'admin' scope" in problem(made, 403)
        assert "lacks the 'admin' scope" in problem(api.post("/v1/keys", json={}), 403)


def test_a_read_token_reads_and_changes_nothing(server: Server) -> None:
    token = new_token(server, "--scope", "read")
    with bearer(server, token) as api:
        assert api.get("/v1/functions").status_code == 200
        assert api.get("/v1/tokens").status_code == 200
        assert "lacks the 'invoke' scope" in problem(
            api.post("/v1/functions/target/invoke", json={}), 403
        )
        assert "lacks the 'publish' scope" in problem(publish(api, "orders"), 403)


def environments(api: httpx.Client, function: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/functions/{function}")
    assert response.status_code == 200, response.text
    return [version["config"]["environment"] for version in response.json()["versions"]]


def test_environment_values_are_shown_only_to_who_may_deploy_the_function(
    server: Server,
) -> None:
    reader = new_token(server, "--scope", "read")
    deployer = new_token(server, "--scope", "read", "--scope", "deploy", "--function", "target")
    with bearer(server, reader) as api:
        assert environments(api, "target") == [{"NOTE": "****"}]
        assert environments(api, "other") == [{"NOTE": "****"}]
        assert "target-env" not in api.get("/v1/functions/target").text
    with bearer(server, deployer) as api:
        assert environments(api, "target") == [{"NOTE": "target-env"}]
        assert environments(api, "other") == [{"NOTE": "****"}]
    with server.client() as admin:
        assert environments(admin, "other") == [{"NOTE": "other-private"}]


def test_an_expired_token_is_refused(server: Server) -> None:
    with server.client() as admin:
        made = admin.post("/v1/tokens", json={"name": "brief", "scopes": ["read"], "expires_in": 1})
    assert made.status_code == 201, made.text
    with bearer(server, made.json()["token"]) as api:
        response = wait_for(
            lambda: (r := api.get("/v1/functions")).status_code == 401 and r,
            timeout=10,
            what="the token to expire",
        )
        assert "'brief'" in problem(response, 401)
        assert "expired at" in problem(response, 401)


def test_a_revoked_token_is_refused_and_tokens_ls_shows_its_last_use(server: Server) -> None:
    token = new_token(server, "--name", "laptop", "--scope", "read")
    token_id = token[4:16]
    with bearer(server, token) as api:
        assert api.get("/v1/functions").status_code == 200
        listed = json.loads(server.cli("tokens", "ls", "--json", check=True).stdout)
        [mine] = [t for t in listed if t["id"] == token_id]
        assert mine["last_used_at"] > mine["created_at"]
        assert mine["scopes"] == ["read"]
        assert "laptop" in server.cli("tokens", "ls", check=True).stdout
        server.cli("tokens", "revoke", token_id, check=True)
        assert "has been revoked" in problem(api.get("/v1/functions"), 401)
    listed = json.loads(server.cli("tokens", "ls", "--json", check=True).stdout)
    assert {t["id"]: t["revoked"] for t in listed}[token_id] is True


def test_the_admin_token_cannot_be_revoked_through_the_api(server: Server) -> None:
    admin_id = server.token[4:16]
    result = server.cli("tokens", "revoke", admin_id)
    assert result.returncode == 7
    assert "admin token" in result.stderr + result.stdout


# -- access keys: each scope, each resource restriction -------------------------------------


def test_an_s3_read_key_reads_only_under_its_prefix(server: Server) -> None:
    s3 = s3_client(
        server, new_key(server, "reader", "--scope", "s3:read", "--bucket", "shared/in/*")
    )
    assert s3.get_object(Bucket="shared", Key="in/a.txt")["Body"].read() == b"shared in"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="shared", Prefix="in/")["Contents"]]
    assert "in/a.txt" in keys
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["shared"]
    message = refused(lambda: s3.get_object(Bucket="private", Key="secret.txt"))
    assert "lacks 's3:read' on object 'private/secret.txt'" in message
    assert "covers only shared/in/*" in message
    refused(lambda: s3.list_objects_v2(Bucket="shared"))
    assert "'s3:write' scope" in refused(
        lambda: s3.put_object(Bucket="shared", Key="in/b.txt", Body=b"b")
    )


def test_an_s3_write_key_writes_only_under_its_prefix(server: Server) -> None:
    s3 = s3_client(
        server, new_key(server, "writer", "--scope", "s3:write", "--bucket", "shared/out/*")
    )
    s3.put_object(Bucket="shared", Key="out/w.txt", Body=b"w")
    refused(lambda: s3.put_object(Bucket="shared", Key="in/w.txt", Body=b"w"))
    refused(lambda: s3.get_object(Bucket="shared", Key="out/w.txt"))
    refused(lambda: s3.delete_bucket(Bucket="shared"))
    # A copy needs read on its source too.
    refused(
        lambda: s3.copy_object(
            Bucket="shared",
            Key="out/copy.txt",
            CopySource={"Bucket": "private", "Key": "secret.txt"},
        )
    )


def test_an_invoke_key_invokes_only_its_function(server: Server) -> None:
    client = lambda_client(
        server, new_key(server, "caller", "--scope", "invoke", "--function", "target")
    )
    assert json.loads(client.invoke(FunctionName="target")["Payload"].read()) == {"target": True}
    message = refused(lambda: client.invoke(FunctionName="other"), "AccessDeniedException")
    assert "lacks 'invoke' on function 'other'" in message
    # Looking a function up shows its environment: that takes deploy.
    refused(lambda: client.get_function(FunctionName="target"), "AccessDeniedException")


def test_a_deploy_key_controls_only_its_function(server: Server) -> None:
    client = lambda_client(
        server, new_key(server, "pipeline", "--scope", "deploy", "--function", "target")
    )
    found = client.get_function(FunctionName="target")
    assert found["Configuration"]["Environment"]["Variables"]["NOTE"] == "target-env"
    client.update_alias(FunctionName="target", Name="live", FunctionVersion="1")
    listed = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert listed == ["target"]
    refused(lambda: client.get_function(FunctionName="other"), "AccessDeniedException")
    refused(
        lambda: client.update_alias(FunctionName="other", Name="live", FunctionVersion="1"),
        "AccessDeniedException",
    )


def test_a_key_signs_v1_requests_with_its_permissions(server: Server) -> None:
    key = new_key(server, "publisher", "--scope", "publish", "--topic", "orders")

    def signed(topic: str) -> httpx.Response:
        url = f"{server.url}/v1/topics/{topic}/events"
        body = json.dumps(event()).encode()
        request = AWSRequest(
            "POST", url, data=body, headers={"Content-Type": "application/cloudevents+json"}
        )
        SigV4Auth(Credentials(*key), "triggerfish", "us-east-1").add_auth(request)
        return httpx.post(url, content=body, headers=dict(request.headers.items()))

    assert signed("orders").status_code == 202
    assert "lacks 'publish' on topic 'payments'" in problem(signed("payments"), 403)


def test_an_expired_key_is_refused(server: Server) -> None:
    s3 = s3_client(server, new_key(server, "brief", "--scope", "s3:read", "--expires", "1s"))

    def expired() -> str | None:
        try:
            s3.head_bucket(Bucket="shared")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return None

    assert wait_for(expired, timeout=10, what="the key to expire") in ("403", "InvalidAccessKeyId")
    message = refused(lambda: s3.list_objects_v2(Bucket="shared"), "InvalidAccessKeyId")
    assert "expired at" in message


def test_a_revoked_key_is_refused_and_keys_ls_shows_its_last_use(server: Server) -> None:
    key = new_key(server, "temporary", "--scope", "s3:read", "--bucket", "shared")
    s3 = s3_client(server, key)
    s3.head_bucket(Bucket="shared")
    listed = json.loads(server.cli("keys", "ls", "--json", check=True).stdout)
    [mine] = [k for k in listed if k["id"] == key[0]]
    assert mine["last_used_at"] is not None
    assert mine["scopes"] == ["s3:read:shared"]
    server.cli("keys", "revoke", key[0], check=True)
    refused(lambda: s3.list_objects_v2(Bucket="shared"), "InvalidAccessKeyId")


# -- a function's own key -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "code"),
    [
        ("update_alias", "AccessDeniedException"),
        ("create_alias", "AccessDeniedException"),
        ("get_other", "AccessDeniedException"),
        ("invoke_other", "AccessDeniedException"),
        ("read_private", "AccessDenied"),
        ("write_in", "AccessDenied"),
        ("publish_payments", "403"),
    ],
)
def test_a_hostile_function_is_refused_what_its_manifest_does_not_grant(
    server: Server, what: str, code: str
) -> None:
    result = attempt(server, "hostile", what)
    assert result.get("error") == code, result
    assert "the access key of function 'hostile'" in result["message"]
    assert "permissions:" in result["message"]  # says where to grant it


@pytest.mark.parametrize(
    ("what", "answer"),
    [
        ("invoke_target", '{"target":true}'),
        ("read_shared", "shared in"),
        ("publish_orders", 202),
        ("list_buckets", ["shared"]),
    ],
)
def test_a_function_may_do_what_its_manifest_grants(
    server: Server, what: str, answer: object
) -> None:
    assert attempt(server, "hostile", what) == {"ok": answer}


def test_a_function_writes_where_its_manifest_lets_it(server: Server) -> None:
    assert "ok" in attempt(server, "hostile", "write_out")
    key = new_key(server, "check", "--scope", "s3:read", "--bucket", "shared/out/*")
    assert (
        s3_client(server, key).get_object(Bucket="shared", Key="out/h.txt")["Body"].read() == b"h"
    )


def test_a_deleted_function_s_key_is_refused(server: Server) -> None:
    key_id, secret = attempt(server, "doomed", "credentials")["ok"]
    key = (key_id, secret)
    s3 = s3_client(server, key)
    assert s3.get_object(Bucket="shared", Key="in/a.txt")["Body"].read() == b"shared in"
    with server.client() as api:
        assert api.delete("/v1/functions/doomed").status_code == 204
    refused(lambda: s3.get_object(Bucket="shared", Key="in/a.txt"), "InvalidAccessKeyId")
    listed = json.loads(server.cli("keys", "ls", "--json", check=True).stdout)
    [gone] = [k for k in listed if k["id"] == key[0]]
    assert (gone["function"], gone["revoked"]) == ("doomed", True)


def test_a_redeploy_gives_the_function_s_key_its_new_permissions(server: Server) -> None:
    key_id, secret = attempt(server, "shifty", "credentials")["ok"]
    key = (key_id, secret)
    s3 = s3_client(server, key)
    assert s3.get_object(Bucket="shared", Key="in/a.txt")["Body"].read() == b"shared in"
    root: Path = server.root  # type: ignore[attr-defined]
    manifest = write_project(root / "shifty", {"shifty": (HOSTILE, {})})
    server.cli("deploy", str(manifest), check=True)
    assert attempt(server, "shifty", "credentials")["ok"] == list(key)  # the same key
    message = refused(lambda: s3.get_object(Bucket="shared", Key="in/a.txt"))
    assert "lacks the 's3:read' scope (it has: none)" in message


def test_a_bad_permission_is_refused_at_deploy_naming_the_function_and_entry(
    server: Server,
) -> None:
    root: Path = server.root  # type: ignore[attr-defined]
    bad = {"permissions": {"buckets": {"write": ["thumbs/*", "Bad Bucket"]}}}
    manifest = write_project(root / "bad", {"careless": (TARGET, bad)})
    result = server.cli("deploy", str(manifest))
    assert result.returncode == 2
    assert "functions.careless.permissions.buckets.write[1]" in result.stderr
    assert '"Bad Bucket"' in result.stderr
