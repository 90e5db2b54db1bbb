"""AWS SAM templates translated into a manifest: each resource, event type and intrinsic
function, what is reported as not carried out, and the errors a person can act on."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from triggerfish.errors import ConfigError
from triggerfish.functions.project import load_project
from triggerfish.functions.templates.common import (
    SERVER_URL,
    TemplateResult,
    Unsupported,
    find_template,
    load_template,
    map_runtime,
)


def translate(
    tmp_path: Path, body: str, parameters: dict[str, str] | None = None
) -> TemplateResult:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    head = "Transform: AWS::Serverless-2016-10-31\n"
    (tmp_path / "template.yaml").write_text(head + textwrap.dedent(body))
    file = find_template(tmp_path)
    assert file is not None
    return load_template(file, parameters)


FUNCTION = """\
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.11
"""


def one_trigger(tmp_path: Path, resources: str, events: str) -> dict[str, Any]:
    body = (
        "Resources:\n"
        + resources
        + FUNCTION
        + "      Events:\n"
        + textwrap.indent(textwrap.dedent(events), " " * 8)
    )
    result = translate(tmp_path, body)
    triggers = result.manifest.functions["fn"].triggers
    assert len(triggers) == 1
    return triggers[0].model_dump(mode="json", exclude_defaults=True)


def test_function_properties_and_globals_map_to_the_function(tmp_path: Path) -> None:
    result = translate(
        tmp_path,
        """\
        Globals:
          Function:
            Timeout: 30
            MemorySize: 512
            Environment:
              Variables: {STAGE: prod, LEVEL: info}
        Resources:
          Orders:
            Type: AWS::SQS::Queue
          OrderHandler:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: .
              Handler: src/app.handler
              Runtime: python3.11
              MemorySize: 1024
              ReservedConcurrentExecutions: 7
              AutoPublishAlias: live
              Environment:
                Variables: {LEVEL: debug}
              DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt Orders.Arn}
              EventInvokeConfig:
                MaximumRetryAttempts: 0
                MaximumEventAgeInSeconds: 120
                DestinationConfig:
                  OnSuccess: {Type: SQS, Destination: !GetAtt Orders.Arn}
        """,
    )
    config = result.manifest.functions["order-handler"]
    assert (config.handler, config.code) == ("app.handler", "src")
    assert (config.memory, config.timeout, config.max_concurrency) == (1024, 30.0, 7)
    assert dict(config.environment) == {"STAGE": "prod", "LEVEL": "debug"}
    assert config.dead_letter == "orders"
    assert (config.async_retry.max_attempts, config.async_retry.max_age) == (1, 120)
    assert config.destinations.on_success == "orders"
    assert "orders" in result.manifest.topics
    assert any("AutoPublishAlias live" in note for note in result.notes)
    assert result.unsupported == []


def test_a_layer_of_the_template_is_a_layer_folder(tmp_path: Path) -> None:
    (tmp_path / "deps").mkdir()
    result = translate(
        tmp_path,
        "Resources:\n  Deps:\n    Type: AWS::Serverless::LayerVersion\n"
        "    Properties: {ContentUri: deps/}\n"
        + FUNCTION
        + "      Layers: [!Ref Deps, arn:aws:lambda:us-east-1:1:layer:x:1]\n",
    )
    assert result.manifest.layer_dirs("fn") == [tmp_path / "./deps"]
    [entry] = result.unsupported
    assert entry.where == "Resources.Fn.Properties.Layers[1]"


def test_s3_event_on_a_bucket_resource(tmp_path: Path) -> None:
    trigger = one_trigger(
        tmp_path,
        "  Photos:\n    Type: AWS::S3::Bucket\n    Properties: {BucketName: my-photos}\n",
        """\
        Up:
          Type: S3
          Properties:
            Bucket: !Ref Photos
            Events: [s3:ObjectCreated:Put]
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}, {Name: suffix, Value: .jpg}]}}
        """,
    )
    assert trigger["bucket"] == {
        "name": "my-photos",
        "events": ["s3:ObjectCreated:Put"],
        "prefix": "in/",
        "suffix": ".jpg",
    }


@pytest.mark.parametrize(
    ("kind", "path", "route", "payload"),
    [
        ("Api", "/orders/{id}", "POST /orders/{id}", "v1"),
        ("HttpApi", "/orders/{id}", "POST /orders/{id}", "v2"),
    ],
)
def test_api_events_are_routes_with_their_payload(
    tmp_path: Path, kind: str, path: str, route: str, payload: str
) -> None:
    trigger = one_trigger(
        tmp_path, "", f"Web:\n  Type: {kind}\n  Properties: {{Path: '{path}', Method: post}}\n"
    )
    assert (trigger["http"]["route"], trigger["http"].get("payload", "v2")) == (route, payload)


def test_an_http_api_without_a_path_is_the_default_route(tmp_path: Path) -> None:
    trigger = one_trigger(tmp_path, "", "Web:\n  Type: HttpApi\n")
    assert trigger["http"]["route"] == "$default"


@pytest.mark.parametrize(
    ("event", "schedule"),
    [
        (
            "Type: Schedule\nProperties: {Schedule: rate(5 minutes)}",
            {"expression": "rate(5 minutes)"},
        ),
        (
            "Type: ScheduleV2\nProperties: {ScheduleExpression: 'cron(0 8 * * ? *)',"
            " ScheduleExpressionTimezone: Europe/Paris}",
            {"expression": "cron(0 8 * * ? *)", "timezone": "Europe/Paris"},
        ),
    ],
)
def test_schedules(tmp_path: Path, event: str, schedule: dict[str, str]) -> None:
    trigger = one_trigger(tmp_path, "", "Tick:\n" + textwrap.indent(event, "  ") + "\n")
    assert trigger["schedule"] == schedule


def test_sqs_event_is_a_batched_trigger_on_the_queues_topic(tmp_path: Path) -> None:
    trigger = one_trigger(
        tmp_path,
        "  Work:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: work-items}\n",
        """\
        Job:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 20
            MaximumBatchingWindowInSeconds: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        """,
    )
    assert trigger["topic"] == "work-items"
    assert trigger["event_format"] == "sqs"
    assert trigger["batch"] == {"size": 20, "window": 5}


@pytest.mark.parametrize("kind", ["EventBridgeRule", "CloudWatchEvent"])
def test_rules_keep_their_aws_pattern(tmp_path: Path, kind: str) -> None:
    trigger = one_trigger(
        tmp_path,
        "",
        f"Rule:\n  Type: {kind}\n  Properties:\n    Pattern:\n"
        "      source: [shop]\n      detail-type: [Order Placed]\n",
    )
    assert trigger["topic"] == "default"
    assert trigger["event_format"] == "eventbridge"
    assert trigger["pattern"] == {"source": ["shop"], "detail-type": ["Order Placed"]}


def test_ref_sub_getatt_and_parameters(tmp_path: Path) -> None:
    result = translate(
        tmp_path,
        """\
        Parameters:
          Stage: {Type: String, Default: dev}
          Color: {Type: String, Default: blue}
        Resources:
          Box:
            Type: AWS::S3::Bucket
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Runtime: python3.11
              Environment:
                Variables:
                  STAGE: !Ref Stage
                  COLOR: !Ref Color
                  BOX: !Ref Box
                  BOX_ARN: !GetAtt Box.Arn
                  LONG_ARN: {"Fn::GetAtt": [Box, Arn]}
                  NAME: !Sub "${AWS::Region}-${Stage}-${Box}"
                  WITH_VARS: !Sub ["${A}/${Box.Arn}", {A: !Ref Stage}]
                  JOINED: !Join ["-", [a, !Ref Stage]]
        Outputs:
          Url:
            Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com/x"
        """,
        {"Stage": "prod"},
    )
    env = dict(result.manifest.functions["fn"].environment)
    assert env == {
        "STAGE": "prod",
        "COLOR": "blue",
        "BOX": "box",
        "BOX_ARN": "arn:aws:s3:::box",
        "LONG_ARN": "arn:aws:s3:::box",
        "NAME": "us-east-1-prod-box",
        "WITH_VARS": "prod/arn:aws:s3:::box",
        "JOINED": "a-prod",
    }
    [url] = result.outputs_for("http://127.0.0.1:8080/")
    assert url.value == "http://127.0.0.1:8080/fn/x"
    assert result.outputs[0].value == f"{SERVER_URL}/fn/x"


def test_dynamodb_and_sns_are_reported_and_the_called_one_is_flagged(tmp_path: Path) -> None:
    result = translate(
        tmp_path,
        """\
        Resources:
          Table:
            Type: AWS::DynamoDB::Table
            Properties: {BillingMode: PAY_PER_REQUEST}
          Alerts:
            Type: AWS::SNS::Topic
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Runtime: python3.11
              Environment: {Variables: {TABLE: !Ref Table}}
              Policies:
                - DynamoDBCrudPolicy: {TableName: !Ref Table}
              Events:
                Alert:
                  Type: SNS
                  Properties: {Topic: !Ref Alerts}
                Changes:
                  Type: DynamoDB
                  Properties: {Stream: !GetAtt Table.StreamArn, StartingPosition: LATEST}
        """,
    )
    assert result.unsupported == [
        Unsupported(
            "Resources.Table",
            "AWS::DynamoDB::Table",
            "AWS::DynamoDB::Table is not provided by Triggerfish; the function will get"
            " connection errors when it calls it",
            called=True,
        ),
        Unsupported(
            "Resources.Alerts", "AWS::SNS::Topic", "AWS::SNS::Topic is not provided by Triggerfish"
        ),
        Unsupported(
            "Resources.Fn.Properties.Policies",
            "Policies",
            "IAM is not enforced by Triggerfish (its own permissions: docs/credentials.md)",
        ),
        Unsupported(
            "Resources.Fn.Properties.Events.Alert",
            "SNS event",
            "SNS events are not a source of Triggerfish",
        ),
        Unsupported(
            "Resources.Fn.Properties.Events.Changes",
            "DynamoDB event",
            "DynamoDB events are not a source of Triggerfish",
        ),
    ]
    assert dict(result.manifest.functions["fn"].environment) == {"TABLE": "Table"}


def test_runtimes_map_to_the_local_ones_with_a_note() -> None:
    import sys

    local = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert map_runtime(local) == ("python", None)
    mapped, note = map_runtime("python3.8")
    assert mapped == "python"
    assert note is not None
    assert note.startswith("python3.8 runs on the local python")
    assert map_runtime("provided.al2023") == ("provided.al2023", None)
    with pytest.raises(ValueError, match="java21"):
        map_runtime("java21")


def test_a_folder_with_a_template_is_a_project(tmp_path: Path) -> None:
    translate(tmp_path, "Resources:\n" + FUNCTION)
    assert set(load_project(tmp_path).functions) == {"fn"}


def test_mistakes_are_errors_that_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Parameters\.Size has no Default"):
        translate(tmp_path, "Parameters:\n  Size: {Type: Number}\nResources:\n" + FUNCTION)
    with pytest.raises(ConfigError, match="no parameter 'Nope'"):
        translate(tmp_path, "Resources:\n" + FUNCTION, {"Nope": "1"})
    with pytest.raises(ConfigError, match=r"!Ref Missing: no parameter or resource"):
        translate(
            tmp_path,
            "Resources:\n" + FUNCTION + "      Environment: {Variables: {X: !Ref Missing}}\n",
        )
    with pytest.raises(ConfigError, match=r"Runtime: the runtime 'java21' is not run"):
        translate(tmp_path, "Resources:\n" + FUNCTION.replace("python3.11", "java21"))
