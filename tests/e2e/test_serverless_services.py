"""``triggerfish deploy serverless.yml``: Serverless Framework services deployed as they
are, and their functions run by the events the service wires (an upload, an HTTP
request, a schedule, a message on the queue, an EventBridge rule).

The Serverless Framework's own sample services (its ``create`` templates and
serverless-offline-aws-eventbridge's examples) are deployed unmodified; a shop service
exercises each event type, the stage, and the variables given at deploy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient

from support.cli import run
from support.lambda_api import aws_client
from support.node_packages import require_node
from support.projects import json_lines, s3_keys
from support.server import Server, wait_for
from support.serverless_samples import EVENTBRIDGE, TEMPLATES, serverless_sample

pytestmark = pytest.mark.e2e

SHOP_SERVICE = """\
service: shop
frameworkVersion: '3'
params:
  default:
    rate: rate(1 hour)
provider:
  name: aws
  runtime: python3.11
  stage: ${opt:stage, 'dev'}
  memorySize: 256
  environment:
    OUT: ${param:out}
    STAGE: ${sls:stage}
    QUEUE: !GetAtt Jobs.QueueName
functions:
  record:
    handler: handler.record
    events:
      - s3:
          bucket: ${self:service}-${sls:stage}-photos
          event: s3:ObjectCreated:*
          rules:
            - suffix: .jpg
      - http:
          path: items/{id}
          method: get
      - httpApi: GET /health
      - schedule: ${param:rate}
      - sqs:
          arn: !GetAtt Jobs.Arn
          batchSize: 5
          maximumBatchingWindow: 1
          functionResponseType: ReportBatchItemFailures
resources:
  Resources:
    Jobs:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: ${self:service}-${sls:stage}-jobs
"""

SHOP_CODE = """\
import json, os

def record(event, context):
    if "httpMethod" in event:  # an http event: API Gateway's REST payload (v1)
        return {"statusCode": 200, "body": json.dumps({
            "id": event["pathParameters"]["id"],
            "resource": event["resource"],
            "stage": os.environ["STAGE"],
            "queue": os.environ["QUEUE"],
        })}
    if event.get("version") == "2.0":  # an httpApi event
        return {"statusCode": 200, "body": json.dumps({"route": event["routeKey"]})}
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        failed = [r["messageId"] for r in records if r["body"] == "poison"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    return None
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serverless")
    server = Server(root / "data").start()
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shop(server: Server) -> dict[str, Any]:
    """The shop service deployed to the stage ``test``; the file its function writes to."""
    root: Path = server.root / "shop"  # type: ignore[attr-defined]
    root.mkdir()
    (root / "serverless.yml").write_text(SHOP_SERVICE)
    (root / "handler.py").write_text(SHOP_CODE)
    out = root / "events.jsonl"
    ran = run(
        server,
        "deploy",
        str(root / "serverless.yml"),
        "--stage",
        "test",
        "--parameter-overrides",
        f"out={out}",
        "--parameter-overrides",
        "rate=rate(1 second)",
    )
    assert ran.code == 0, ran.err + ran.out
    return {"out": out, "printed": ran.out, "report": ran.err}


def records(shop: dict[str, Any]) -> list[dict[str, Any]]:
    return json_lines(shop["out"])


def aws(server: Server, service: str, *key_options: str) -> BaseClient:
    return aws_client(server, service, *key_options)


@pytest.mark.parametrize("sample", ["aws-python3", "aws-nodejs"])
def test_the_frameworks_own_templates_run_as_written(
    server: Server, sample: str, tmp_path: Path
) -> None:
    if sample == "aws-nodejs":
        require_node()
    folder = serverless_sample(f"{TEMPLATES}/{sample}", tmp_path)
    ran = run(server, "deploy", str(folder / "serverless.yml"))
    assert ran.code == 0, ran.err + ran.out
    assert f"{sample}-dev-hello" in ran.out
    with server.client() as api:
        answer = api.post(f"/v1/functions/{sample}-dev-hello/invoke", json={"name": "ada"})
    assert answer.status_code == 200, answer.text
    body = json.loads(answer.json()["body"])
    assert body["message"] == "Go Serverless v1.0! Your function executed successfully!"
    assert body["input"] == {"name": "ada"}


def test_an_eventbridge_sample_consumes_the_events_its_pattern_selects(
    server: Server, tmp_path: Path
) -> None:
    folder = serverless_sample(f"{EVENTBRIDGE}/remote-subscriber", tmp_path)
    ran = run(server, "deploy", str(folder), "--json")
    unsupported = {u["what"] for u in ran.json()["unsupported"]}
    assert unsupported == {"serverless-offline", "serverless-offline-aws-eventbridge"}
    name = "remote-subscriber-dev-consume-event"
    events = aws(server, "events")
    entries = [
        {"EventBusName": "marketing", "Source": "acme.other", "DetailType": "x", "Detail": "{}"},
        {
            "EventBusName": "marketing",
            "Source": "acme.newsletter.campaign",
            "DetailType": "UserSignUp",
            "Detail": json.dumps({"email": "ada@example.com"}),
        },
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0

    def done() -> list[dict[str, Any]]:
        with server.client() as api:
            page = api.get("/v1/invocations", params={"function": name}).json()
        return [r for r in page["invocations"] if r["status"] == "ok"]

    [invocation] = wait_for(done, what="the subscriber's invocation")
    with server.client() as api:
        full = api.get(f"/v1/invocations/{invocation['id']}").json()
    assert "Remote Eventbridge event received" in full["logs"]
    assert "ada@example.com" in full["logs"]
    assert "acme.other" not in full["logs"]


def test_the_deploy_prints_the_routes_at_the_server(server: Server, shop: dict[str, Any]) -> None:
    printed = shop["printed"]
    assert f"shop-test-record GET /items/{{id}}: {server.url}/fn/items/{{id}}" in printed
    assert f"shop-test-record GET /health: {server.url}/fn/health" in printed
    assert "not carried out" not in shop["report"]


def test_an_http_event_gets_the_rest_api_v1_payload(server: Server, shop: dict[str, Any]) -> None:
    response = httpx.get(f"{server.url}/fn/items/42", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": "42",
        "resource": "/items/{id}",
        "stage": "test",
        "queue": "shop-test-jobs",
    }


def test_an_http_api_event_gets_the_v2_payload(server: Server, shop: dict[str, Any]) -> None:
    response = httpx.get(f"{server.url}/fn/health", timeout=30)
    assert response.json() == {"route": "GET /health"}


def test_an_upload_runs_the_function_with_the_rules_filter(
    server: Server, shop: dict[str, Any]
) -> None:
    s3 = aws(server, "s3")
    s3.put_object(Bucket="shop-test-photos", Key="skip.png", Body=b"no")
    s3.put_object(Bucket="shop-test-photos", Key="cat.jpg", Body=b"meow")

    assert wait_for(lambda: s3_keys(records(shop)), what="the upload's S3 event") == ["cat.jpg"]


def test_messages_on_the_queue_run_the_function_and_failed_items_are_retried(
    server: Server, shop: dict[str, Any]
) -> None:
    sqs = aws(server, "sqs")
    url = sqs.get_queue_url(QueueName="shop-test-jobs")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "a", "MessageBody": "job-1"}, {"Id": "b", "MessageBody": "poison"}],
    )

    def bodies() -> list[str] | None:
        seen = [
            record["body"]
            for r in records(shop)
            for record in r.get("Records", [])
            if record.get("eventSource") == "aws:sqs"
        ]
        return seen if seen.count("poison") >= 2 else None

    seen = wait_for(bodies, timeout=30, what="the poison message to be retried")
    assert seen.count("job-1") == 1


def test_the_schedule_fires_at_the_rate_given_at_deploy(shop: dict[str, Any]) -> None:
    def ticks() -> list[dict[str, Any]]:
        return [r for r in records(shop) if r.get("detail-type") == "Scheduled Event"]

    assert wait_for(ticks, what="a scheduled event")[0]["source"] == "aws.events"


def test_strict_refuses_a_service_with_what_triggerfish_does_not_provide(
    server: Server, tmp_path: Path
) -> None:
    (tmp_path / "handler.py").write_text(SHOP_CODE)
    (tmp_path / "serverless.yml").write_text(
        "service: orders\nprovider: {name: aws, runtime: python3.11}\n"
        "functions:\n  place:\n    handler: handler.record\n"
        "    environment: {TABLE: !Ref Orders}\n"
        "    events: [{sns: order-events}]\n"
        "resources:\n  Resources:\n    Orders: {Type: 'AWS::DynamoDB::Table'}\n"
    )
    ran = run(server, "deploy", str(tmp_path), "--strict")
    assert ran.code == 1
    assert "--strict: 2 thing(s) of the template are not carried out" in ran.err
    with server.client() as api:
        assert api.get("/v1/functions/orders-dev-place").status_code == 404
