"""``triggerfish deploy template.yaml``: AWS SAM templates deployed as they are, and
their functions run by the events the template wires (an upload, an HTTP request, a
schedule, a message on the queue, an EventBridge rule).

The AWS SAM CLI's own sample apps are deployed unmodified; a shop template exercises
every event type, resource and intrinsic function Triggerfish carries out."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient

from support.cli import run
from support.lambda_api import aws_client
from support.projects import json_lines, s3_keys
from support.sam_samples import sam_sample
from support.server import Server, wait_for

pytestmark = pytest.mark.e2e

SHOP_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  OutFile:
    Type: String
    Default: /dev/null
  Rate:
    Type: String
    Default: rate(1 hour)
Globals:
  Function:
    Runtime: python3.11
    Timeout: 10
    MemorySize: 256
    Environment:
      Variables:
        OUT: !Ref OutFile
Resources:
  Uploads:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-uploads"
  Jobs:
    Type: AWS::SQS::Queue
  RecordFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.record
      ReservedConcurrentExecutions: 5
      Environment:
        Variables:
          BUCKET: !Ref Uploads
          QUEUE_ARN: !GetAtt Jobs.Arn
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter:
              S3Key:
                Rules:
                  - Name: suffix
                    Value: .txt
        Job:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        Tick:
          Type: Schedule
          Properties:
            Schedule: !Ref Rate
        Order:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [shop]
              detail-type: [Order Placed]
              detail:
                total: [{numeric: [">", 10]}]
        Item:
          Type: Api
          Properties:
            Path: /items/{id}
            Method: get
        Health:
          Type: HttpApi
          Properties:
            Path: /health
            Method: get
Outputs:
  ItemsApi:
    Description: the items endpoint
    Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/items/"
  UploadsBucket:
    Value: !Ref Uploads
"""

SHOP_CODE = """\
import json, os

def record(event, context):
    if "httpMethod" in event:  # an Api event: API Gateway's REST payload (v1)
        return {
            "statusCode": 200,
            "multiValueHeaders": {"X-Item": [event["pathParameters"]["id"]]},
            "body": json.dumps({
                "resource": event["resource"],
                "path": event["path"],
                "stage": event["requestContext"]["stage"],
                "tags": event["multiValueHeaders"]["X-Tag"],
                "query": event["multiValueQueryStringParameters"],
                "bucket": os.environ["BUCKET"],
                "queue": os.environ["QUEUE_ARN"],
            }),
        }
    if event.get("version") == "2.0":  # an HttpApi event
        return {"statusCode": 200, "body": json.dumps({"route": event["routeKey"]})}
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps(event) + "\\n")
    if event.get("Records", [{}])[0].get("eventSource") == "aws:sqs":
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "poison"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    return None
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("sam")
    server = Server(root / "data").start()
    server.root = root  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shop(server: Server) -> dict[str, Any]:
    """The shop template deployed, with its outputs; the file its function writes to."""
    root: Path = server.root / "shop"  # type: ignore[attr-defined]
    (root / "src").mkdir(parents=True)
    (root / "template.yaml").write_text(SHOP_TEMPLATE)
    (root / "src" / "app.py").write_text(SHOP_CODE)
    out = root / "events.jsonl"
    overrides = f"OutFile={out} Rate='rate(1 second)'"
    answer = run(server, "deploy", str(root), "--parameter-overrides", overrides, "--json").json()
    return {**answer, "out": out}


def records(shop: dict[str, Any]) -> list[dict[str, Any]]:
    return json_lines(shop["out"])


def aws(server: Server, service: str, *key_options: str) -> BaseClient:
    return aws_client(server, service, *key_options)


@pytest.mark.parametrize("sample", ["hello-python", "hello-nodejs"])
def test_the_sam_cli_hello_world_apps_answer_on_their_route(
    server: Server, sample: str, tmp_path: Path
) -> None:
    app = sam_sample(sample, tmp_path)
    ran = run(server, "deploy", str(app / "template.yaml"))
    assert ran.code == 0, ran.err + ran.out
    # Outputs: the API's URL is the server's /fn, without the stage.
    assert f"HelloWorldApi: {server.url}/fn/hello/" in ran.out
    response = httpx.get(f"{server.url}/fn/hello", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"message": "hello world"}


def test_outputs_name_the_route_url_and_the_bucket(server: Server, shop: dict[str, Any]) -> None:
    outputs = {o["name"]: o["value"] for o in shop["outputs"]}
    assert outputs == {"ItemsApi": f"{server.url}/fn/items/", "UploadsBucket": "shop-uploads"}
    assert shop["unsupported"] == []


def test_an_api_event_gets_the_rest_api_v1_payload(server: Server, shop: dict[str, Any]) -> None:
    response = httpx.get(
        f"{server.url}/fn/items/42?color=red&color=blue",
        headers=[("X-Tag", "a"), ("X-Tag", "b")],
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers.get_list("x-item") == ["42"]
    assert response.json() == {
        "resource": "/items/{id}",
        "path": "/items/42",
        "stage": "Prod",
        "tags": ["a", "b"],
        "query": {"color": ["red", "blue"]},
        "bucket": "shop-uploads",
        "queue": "arn:aws:sqs:us-east-1:123456789012:jobs",
    }


def test_an_http_api_event_gets_the_v2_payload(server: Server, shop: dict[str, Any]) -> None:
    response = httpx.get(f"{server.url}/fn/health", timeout=30)
    assert response.json() == {"route": "GET /health"}


def test_an_upload_to_the_templates_bucket_runs_the_function(
    server: Server, shop: dict[str, Any]
) -> None:
    s3 = aws(server, "s3")
    s3.put_object(Bucket="shop-uploads", Key="skip.bin", Body=b"no")
    s3.put_object(Bucket="shop-uploads", Key="notes/a.txt", Body=b"hello")

    assert wait_for(lambda: s3_keys(records(shop)), what="the upload's S3 event") == ["notes/a.txt"]


def test_a_message_on_the_queue_runs_the_function_with_sqs_records(
    server: Server, shop: dict[str, Any]
) -> None:
    sqs = aws(server, "sqs")
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job-1")

    def bodies() -> list[str]:
        return [
            record["body"]
            for r in records(shop)
            for record in r.get("Records", [])
            if record.get("eventSource") == "aws:sqs"
        ]

    assert wait_for(bodies, what="the SQS batch") == ["job-1"]


def test_the_schedule_fires_at_the_overridden_rate(shop: dict[str, Any]) -> None:
    def ticks() -> list[dict[str, Any]]:
        return [r for r in records(shop) if r.get("detail-type") == "Scheduled Event"]

    assert wait_for(ticks, what="a scheduled event")[0]["source"] == "aws.events"


def test_the_eventbridge_rule_pattern_selects_events(server: Server, shop: dict[str, Any]) -> None:
    events = aws(server, "events")
    for total in (5, 25):
        entry = {
            "Source": "shop",
            "DetailType": "Order Placed",
            "Detail": json.dumps({"total": total}),
        }
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    def orders() -> list[Any]:
        return [
            r["detail"]["total"] for r in records(shop) if r.get("detail-type") == "Order Placed"
        ]

    assert wait_for(orders, what="the matching order") == [25]


UNSUPPORTED_TEMPLATE = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
      Alerts:
        Type: AWS::SNS::Topic
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: src/
          Handler: app.record
          Runtime: python3.11
          Environment:
            Variables:
              TABLE: !Ref Table
""")


def test_strict_refuses_a_template_with_what_triggerfish_does_not_provide(
    server: Server, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(SHOP_CODE)
    (tmp_path / "template.yaml").write_text(UNSUPPORTED_TEMPLATE)
    ran = run(server, "deploy", str(tmp_path), "--strict")
    assert ran.code == 1
    assert "--strict: 2 thing(s) of the template are not carried out" in ran.err
    with server.client() as api:
        assert api.get("/v1/functions/fn").status_code == 404


def test_export_writes_a_template_that_deploys_back_to_the_same_triggers(
    server: Server, shop: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    from triggerfish.functions.templates.common import load_template

    out = tmp_path / "template.yaml"
    ran = run(server, "export", "record-function", "--format", "sam", "--out", str(out))
    assert ran.code == 0, ran.err + ran.out
    shutil.copytree(shop["out"].parent / "src", tmp_path / "record-function")
    back = load_template(out).manifest.functions["record-function"]
    original = load_template(shop["out"].parent / "template.yaml").manifest
    kinds = sorted(t.kind for t in back.triggers)
    assert kinds == sorted(t.kind for t in original.functions["record-function"].triggers)
    assert (back.memory, back.timeout, back.max_concurrency) == (256, 10.0, 5)
    by_kind = {t.kind: t for t in back.triggers}
    assert by_kind["bucket"].bucket is not None
    assert by_kind["bucket"].bucket.suffix == ".txt"
    assert by_kind["http"].http is not None
    routes = sorted((t.http.route, t.http.payload) for t in back.triggers if t.http)
    assert routes == [("GET /health", "v2"), ("GET /items/{id}", "v1")]
