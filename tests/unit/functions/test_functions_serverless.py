"""serverless.yml read as a Triggerfish manifest: each event type, variable form and
resource, and the report of what is not carried out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from triggerfish.errors import ConfigError
from triggerfish.functions.build import Builder
from triggerfish.functions.manifest import FunctionConfig
from triggerfish.functions.project import load_project
from triggerfish.functions.templates.common import TemplateResult, find_template, load_template

HANDLER = "def hello(event, context):\n    return event\n"


def service(tmp_path: Path, text: str, parameters: dict[str, str] | None = None) -> TemplateResult:
    (tmp_path / "handler.py").write_text(HANDLER)
    file = tmp_path / "serverless.yml"
    file.write_text(textwrap.dedent(text))
    return load_template(file, parameters)


def only(result: TemplateResult) -> tuple[str, FunctionConfig]:
    [(name, config)] = result.manifest.functions.items()
    return name, config


def trigger(result: TemplateResult, index: int = 0) -> dict[str, Any]:
    dumped: dict[str, Any] = only(result)[1].triggers[index].model_dump(exclude_defaults=True)
    return dumped


def test_provider_settings_and_serverless_defaults(tmp_path: Path) -> None:
    result = service(
        tmp_path,
        """
        service: shop
        provider:
          name: aws
          runtime: python3.11
          environment: {TABLE: orders, LEVEL: info}
        functions:
          hello:
            handler: handler.hello
            timeout: 20
            environment: {LEVEL: debug, RETRIES: 3}
          other:
            handler: handler.hello
            name: custom-name
            memorySize: 256
            reservedConcurrency: 2
        """,
    )
    functions = result.manifest.functions
    assert sorted(functions) == ["custom-name", "shop-dev-hello"]
    hello = functions["shop-dev-hello"]
    assert (hello.handler, hello.runtime, hello.memory, hello.timeout) == (
        "handler.hello", "python", 1024, 20.0
    )  # fmt: skip
    assert hello.environment == {"TABLE": "orders", "LEVEL": "debug", "RETRIES": "3"}
    other = functions["custom-name"]
    assert (other.memory, other.timeout, other.max_concurrency) == (256, 6.0, 2)
    assert result.manifest.code_dir("custom-name") == tmp_path
    assert load_project(tmp_path).functions.keys() == functions.keys()
    assert find_template(tmp_path) == tmp_path / "serverless.yml"


@pytest.mark.parametrize(
    ("text", "parameters", "env", "expected"),
    [
        ("${opt:stage, 'dev'}", {}, {}, "dev"),
        ("${opt:stage, 'dev'}", {"stage": "prod"}, {}, "prod"),
        ("${sls:stage}-x", {"stage": "qa"}, {}, "qa-x"),
        ("${self:custom.greeting}", {}, {}, "hi dev"),
        ("${self:provider.region}", {}, {}, "eu-west-1"),
        ("${env:SLS_TEST_COLOR}", {}, {"SLS_TEST_COLOR": "red"}, "red"),
        ("${env:SLS_TEST_MISSING, ${self:custom.fallback}}", {}, {}, "from custom"),
        ("${env:SLS_TEST_MISSING, self:custom.fallback}", {}, {}, "from custom"),
        ("${param:size}", {}, {}, "small"),
        ("${param:size}", {"stage": "prod"}, {}, "large"),
        ("${param:size}", {"size": "huge"}, {}, "huge"),
        ("${self:custom.port}", {}, {}, "8080"),
        ("${file(./extra.yml):color}", {}, {}, "green"),
        ("${aws:accountId}/${aws:region}", {}, {}, "000000000000/eu-west-1"),
        ("${ssm:/app/key, 'fallback'}", {}, {}, "fallback"),
    ],
)
def test_variables(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    parameters: dict[str, str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "extra.yml").write_text("color: green\n")
    result = service(
        tmp_path,
        f"""
        service: vars
        params:
          prod: {{size: large}}
          default: {{size: small}}
        custom:
          greeting: hi ${{sls:stage}}
          fallback: from custom
          port: 8080
        provider: {{name: aws, runtime: python3.11, region: eu-west-1}}
        functions:
          hello:
            handler: handler.hello
            environment:
              VALUE: "{text}"
        """,
        parameters,
    )
    assert only(result)[1].environment["VALUE"] == expected


def test_a_source_triggerfish_cannot_read_is_reported_when_its_fallback_is_used(
    tmp_path: Path,
) -> None:
    result = service(
        tmp_path,
        """
        service: vars
        provider: {name: aws, runtime: python3.11}
        functions:
          hello:
            handler: handler.hello
            environment: {KEY: "${ssm:/app/key, 'x'}"}
        """,
    )
    [entry] = result.unsupported
    assert entry.where == "functions.hello.environment.KEY"
    assert "${ssm:/app/key}" in entry.reason


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${opt:region}", "pass it (--stage, --region or --parameter-overrides)"),
        ("${env:SLS_TEST_UNSET}", "not set in the environment of triggerfish deploy"),
        ("${ssm:/app/key}", "cannot read the 'ssm' source; give a fallback"),
        ("${self:custom.nothing}", "give a fallback after a comma"),
    ],
)
def test_a_variable_without_a_value_is_refused_with_what_to_do(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        service(
            tmp_path,
            f"""
            service: vars
            provider: {{name: aws, runtime: python3.11}}
            functions:
              hello:
                handler: handler.hello
                environment: {{V: "{value}"}}
            """,
        )
    assert "functions.hello.environment.V" in str(caught.value)
    assert message in str(caught.value)


EVENTS = """
service: events
provider:
  name: aws
  runtime: python3.11
functions:
  hello:
    handler: handler.hello
    events:
      - {event}
resources:
  Resources:
    Jobs:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: jobs
        MessageRetentionPeriod: 3600
        RedrivePolicy:
          deadLetterTargetArn: !GetAtt JobsDlq.Arn
          maxReceiveCount: 4
    JobsDlq:
      Type: AWS::SQS::Queue
"""


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            "s3: {bucket: photos, event: 's3:ObjectRemoved:*',"
            " rules: [{prefix: in/}, {suffix: .jpg}]}",
            {"bucket": {"name": "photos", "events": ["s3:ObjectRemoved:*"], "prefix": "in/",
                        "suffix": ".jpg"}, "event_format": "aws"},
        ),
        ("s3: photos", {"bucket": {"name": "photos"}, "event_format": "aws"}),
        (
            "http: {path: 'items/{id}', method: get}",
            {"http": {"route": "GET /items/{id}", "payload": "v1"}},
        ),
        ("http: POST orders", {"http": {"route": "POST /orders", "payload": "v1"}}),
        ("httpApi: 'GET /health'", {"http": {"route": "GET /health"}}),
        ("httpApi: '*'", {"http": {"route": "$default"}}),
        ("httpApi: {method: '*', path: /any}", {"http": {"route": "ANY /any"}}),
        ("schedule: rate(10 minutes)",
         {"schedule": {"expression": "rate(10 minutes)"}, "event_format": "aws"}),
        ("schedule: {rate: ['cron(0 12 * * ? *)']}",
         {"schedule": {"expression": "cron(0 12 * * ? *)"}, "event_format": "aws"}),
        (
            "sqs: {arn: !GetAtt Jobs.Arn, batchSize: 5, maximumBatchingWindow: 2,"
            " functionResponseType: ReportBatchItemFailures}",
            {"topic": "jobs", "event_format": "sqs", "batch_size": 5,
             "batch": {"size": 5, "window": 2}, "dead_letter": "events-dev-jobs-dlq",
             "retry": {"max_attempts": 4}},
        ),
        (
            "sqs: arn:aws:sqs:us-east-1:123456789012:orders",
            {"topic": "orders", "event_format": "sqs", "batch_size": 10, "batch": {"size": 10}},
        ),
        (
            "eventBridge: {eventBus: marketing, pattern: {source: [acme.newsletter]}}",
            {"topic": "marketing", "event_format": "eventbridge",
             "pattern": {"source": ["acme.newsletter"]}},
        ),
        (
            "eventBridge: {pattern: {source: [shop]}}",
            {"topic": "default", "event_format": "eventbridge", "pattern": {"source": ["shop"]}},
        ),
    ],
)  # fmt: skip
def test_each_event_type_becomes_its_trigger(
    tmp_path: Path, event: str, expected: dict[str, Any]
) -> None:
    result = service(tmp_path, EVENTS.format(event=event))
    got = trigger(result)
    got.pop("name")
    assert got == expected
    assert result.unsupported == []


def test_queues_are_topics_and_routes_are_outputs(tmp_path: Path) -> None:
    result = service(tmp_path, EVENTS.format(event="http: GET items"))
    topics = result.manifest.topics
    assert topics["jobs"].retention == 3600
    assert "events-dev-jobs-dlq" in topics
    assert [(o.name, o.value) for o in result.outputs] == [
        ("events-dev-hello GET /items", "${TriggerfishUrl}/fn/items")
    ]


def test_disabled_schedules_make_no_trigger_and_say_so(tmp_path: Path) -> None:
    result = service(
        tmp_path, EVENTS.format(event="schedule: {rate: rate(1 hour), enabled: false}")
    )
    assert only(result)[1].triggers == []
    assert any("disabled" in note for note in result.notes)


def test_intrinsics_name_buckets_and_queues_in_the_environment(tmp_path: Path) -> None:
    result = service(
        tmp_path,
        """
        service: media
        provider:
          name: aws
          runtime: python3.11
          stage: prod
          environment:
            BUCKET: !Ref Uploads
            ARN: {"Fn::GetAtt": [Uploads, Arn]}
            QUEUE_URL: !Ref Jobs
            QUEUE_NAME: !GetAtt Jobs.QueueName
            JOINED: !Join ["/", [!Ref Uploads, in]]
            SUB: !Sub "${Uploads}-${AWS::Region}-${AWS::StackName}"
          iam:
            role:
              statements:
                - Effect: Allow
                  Action: [s3:GetObject, s3:PutObject]
                  Resource: !Sub "arn:aws:s3:::${Uploads}/*"
                - Effect: Allow
                  Action: sqs:SendMessage
                  Resource: !GetAtt Jobs.Arn
        functions:
          hello:
            handler: handler.hello
        resources:
          Resources:
            Uploads:
              Type: AWS::S3::Bucket
              Properties:
                BucketName: media-${sls:stage}-uploads
            Jobs:
              Type: AWS::SQS::Queue
        """,
    )
    name, config = only(result)
    assert name == "media-prod-hello"
    assert config.environment == {
        "BUCKET": "media-prod-uploads",
        "ARN": "arn:aws:s3:::media-prod-uploads",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/media-prod-jobs",
        "QUEUE_NAME": "media-prod-jobs",
        "JOINED": "media-prod-uploads/in",
        "SUB": "media-prod-uploads-us-east-1-media-prod",
    }
    assert config.permissions.buckets.read == ["media-prod-uploads"]
    assert config.permissions.buckets.write == ["media-prod-uploads"]
    assert config.permissions.publish == ["media-prod-jobs"]
    assert "media-prod-jobs" in result.manifest.topics
    assert result.unsupported == []


DYNAMO_AND_SNS = """
service: orders
plugins:
  - serverless-python-requirements
provider:
  name: aws
  runtime: python3.11
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [dynamodb:PutItem]
          Resource: !GetAtt OrdersTable.Arn
functions:
  place:
    handler: handler.hello
    environment:
      TABLE: !Ref OrdersTable
    events:
      - http: {path: orders, method: post, cors: true}
      - sns: order-events
      - stream: {type: dynamodb, arn: !GetAtt OrdersTable.StreamArn}
resources:
  Resources:
    OrdersTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: orders
    Alerts:
      Type: AWS::SNS::Topic
"""


def test_what_is_not_carried_out_is_listed_with_its_reason(tmp_path: Path) -> None:
    result = service(tmp_path, DYNAMO_AND_SNS)
    lines = {(u.where, u.what, u.called) for u in result.unsupported}
    assert lines == {
        ("plugins[0]", "serverless-python-requirements", False),
        ("provider.iam.role.statements[0]", "IAM statement", False),
        ("functions.place.events[1]", "sns event", False),
        ("functions.place.events[2]", "stream event", False),
        ("resources.Resources.OrdersTable", "AWS::DynamoDB::Table", True),
        ("resources.Resources.Alerts", "AWS::SNS::Topic", False),
    }
    reasons = {u.where: u.reason for u in result.unsupported}
    assert reasons["resources.Resources.OrdersTable"] == (
        "not provided by Triggerfish (no DynamoDB); the function will get connection errors"
        " when it calls it"
    )
    assert "installs each function's requirements.txt" in reasons["plugins[0]"]
    # What is carried out still is: the route, with its CORS.
    http = only(result)[1].triggers[0].http
    assert http is not None
    assert http.route == "POST /orders"
    assert http.cors is not None
    assert http.cors.allow_origins == ["*"]


def test_bad_input_is_refused_with_the_key_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"functions\.hello\.runtime: .*'java17' is not run"):
        service(
            tmp_path,
            "service: s\nprovider: {name: aws, runtime: java17}\n"
            "functions: {hello: {handler: handler.hello}}\n",
        )
    with pytest.raises(ConfigError, match=r"provider\.name: 'google'"):
        service(tmp_path, "service: s\nprovider: {name: google}\nfunctions: {}\n")
    with pytest.raises(ConfigError, match="no resource named 'Nope'"):
        service(
            tmp_path,
            "service: s\nprovider: {name: aws, runtime: python3.11}\n"
            "functions: {hello: {handler: handler.hello, environment: {X: !Ref Nope}}}\n",
        )


@pytest.mark.parametrize(
    ("package", "installs"),
    [
        ({"devDependencies": {"serverless-offline": "^8.8.1"}}, False),
        ({"name": "tools-only"}, False),
        ({"dependencies": {"is-number": "7.0.0"}}, True),
    ],
)
def test_a_services_package_json_of_plugins_needs_no_npm_install(
    tmp_path: Path, package: dict[str, Any], installs: bool
) -> None:
    (tmp_path / "package.json").write_text(json.dumps(package))
    assert (Builder(tmp_path / "envs").node_requirements(tmp_path) is not None) is installs
