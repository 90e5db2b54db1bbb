"""Durable functions: handlers written with AWS's Durable Execution SDK, unmodified, on
a running Triggerfish; their checkpoints, waits, callbacks and retries go through the
Lambda API with boto3, as on AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from support.lambda_api import lambda_client, new_key
from support.projects import write_project
from support.server import Server, wait_for

pytest.importorskip("aws_durable_execution_sdk_python")

pytestmark = pytest.mark.e2e

DURABLE = {"durable": {"execution_timeout": "1h", "retention": "1d"}, "timeout": 30}

ORDER = """
import os
from aws_durable_execution_sdk_python import (
    DurableContext,
    StepContext,
    durable_execution,
    durable_step,
)
from aws_durable_execution_sdk_python.config import Duration

OUT = os.environ["OUT"]


def note(name, text):
    with open(os.path.join(OUT, name), "a") as out:
        out.write(text + "\\n")


@durable_step
def validate(step_context: StepContext, order: dict) -> dict:
    note(f"validate-{order['id']}", "validated")
    return {"id": order["id"], "total": sum(item["price"] for item in order["items"])}


@durable_step
def charge(step_context: StepContext, order: dict) -> str:
    note(f"charge-{order['id']}", "charged")
    return f"payment-{order['id']}"


@durable_step
def ship(step_context: StepContext, order: dict, payment: str) -> str:
    note(f"ship-{order['id']}", "shipped")
    return f"parcel-{order['id']}"


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    order = context.step(validate(event))
    payment = context.step(charge(order))
    context.wait(Duration.from_seconds(event.get("wait", 1)))
    parcel = context.step(ship(order, payment))
    return {"order": order, "payment": payment, "parcel": parcel}
"""

APPROVAL = """
import json
import os
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, WaitForCallbackConfig

OUT = os.environ["OUT"]


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    def ask(callback_id, callback_context):
        with open(os.path.join(OUT, f"approval-{event['id']}"), "w") as out:
            out.write(callback_id)

    decision = context.wait_for_callback(
        ask, name="approval", config=WaitForCallbackConfig(timeout=Duration.from_minutes(5))
    )
    # The SDK hands over the callback's result as the text it was sent.
    return {"id": event["id"], "decision": json.loads(decision)}
"""

FANOUT = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    branches = context.parallel(
        [
            lambda ctx: ctx.step(lambda _: "left", name="left"),
            lambda ctx: ctx.step(lambda _: "right", name="right"),
        ],
        name="both",
    )
    doubled = context.map(
        event["items"],
        lambda ctx, item, index, items: ctx.step(lambda _: item * 2, name=f"double-{index}"),
        name="doubled",
    )
    return {"branches": branches.get_results(), "doubled": doubled.get_results()}
"""

FLAKY = """
import os
from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, StepConfig
from aws_durable_execution_sdk_python.retries import (
    JitterStrategy,
    RetryStrategyConfig,
    create_retry_strategy,
)

OUT = os.environ["OUT"]
RETRY = create_retry_strategy(
    RetryStrategyConfig(
        max_attempts=3,
        initial_delay=Duration.from_seconds(1),
        backoff_rate=1,
        jitter_strategy=JitterStrategy.NONE,
    )
)


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    def call_partner(step_context: StepContext) -> str:
        path = os.path.join(OUT, f"attempts-{event['id']}")
        with open(path, "a") as out:
            out.write(f"{step_context.attempt}\\n")
        with open(path) as seen:
            attempts = len(seen.read().split())
        if attempts < 3:
            raise ConnectionError(f"partner unavailable (attempt {attempts})")
        return f"answered on attempt {attempts}"

    answer = context.step(call_partner, name="partner", config=StepConfig(retry_strategy=RETRY))
    return {"answer": answer}
"""

CHAIN = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution


@durable_execution
def handler(event: dict, context: DurableContext) -> dict:
    greeting = context.invoke("greeter", {"name": event["name"]}, name="greet")
    return {"greeting": greeting}
"""

GREETER = """
def handler(event, context):
    return f"hello {event['name']}"
"""


def functions(out: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    settings = {**DURABLE, "environment": {"OUT": str(out)}}
    return {
        "order": (ORDER, settings),
        "approval": (APPROVAL, settings),
        "fanout": (FANOUT, settings),
        "flaky": (FLAKY, settings),
        "chain": (CHAIN, {**settings, "permissions": {"invoke": ["greeter"]}}),
        "chain-unpermitted": (CHAIN, settings),
        "greeter": (GREETER, {}),
    }


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("durable-out")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, out: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("durable")
    server = Server(root / "data").start()
    try:
        manifest = write_project(root / "project", functions(out))
        server.cli("deploy", str(manifest), check=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> BaseClient:
    return lambda_client(server, new_key(server))


def start(client: BaseClient, function: str, event: dict[str, Any]) -> Any:
    reply = client.invoke(FunctionName=function, Payload=json.dumps(event))
    assert "FunctionError" not in reply, reply["Payload"].read()
    return json.loads(reply["Payload"].read())


def finished(client: BaseClient, arn: str, timeout: float = 20.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = client.get_durable_execution(DurableExecutionArn=arn)
        return found if found["Status"] != "RUNNING" else None

    done: dict[str, Any] = wait_for(ended, timeout=timeout, what=f"execution {arn} to end")
    return done


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_an_order_runs_its_steps_waits_and_completes_with_each_step_done_once(
    server: Server, client: BaseClient, out: Path
) -> None:
    started = start(client, "order", {"id": "o-1", "items": [{"price": 3}, {"price": 4}]})
    # The wait ended the invocation: the caller gets the running execution.
    assert started["Status"] == "RUNNING"
    arn = started["DurableExecutionArn"]
    assert lines(out / "charge-o-1") == ["charged"]
    assert not (out / "ship-o-1").exists()

    done = finished(client, arn)
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {
        "order": {"id": "o-1", "total": 7},
        "payment": "payment-o-1",
        "parcel": "parcel-o-1",
    }
    # The resume replayed the completed steps from the log instead of running them.
    assert lines(out / "validate-o-1") == ["validated"]
    assert lines(out / "charge-o-1") == ["charged"]
    assert lines(out / "ship-o-1") == ["shipped"]

    listed = client.list_durable_executions_by_function(FunctionName="order")
    assert arn in [e["DurableExecutionArn"] for e in listed["DurableExecutions"]]
    history = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    kinds = [event["EventType"] for event in history]
    assert kinds[0] == "ExecutionStarted"
    assert kinds[-1] == "ExecutionSucceeded"
    assert "WaitSucceeded" in kinds
    assert kinds.count("StepSucceeded") == 3

    execution_id = arn.rsplit("/", 1)[-1]
    listed_by_cli = server.cli("executions", "ls", "order", "--json", check=True)
    assert execution_id in [e["id"] for e in json.loads(listed_by_cli.stdout)["executions"]]
    shown = server.cli("executions", "show", arn, check=True).stdout
    assert "SUCCEEDED" in shown
    for step in ("validate", "charge", "ship"):
        assert step in shown
    config = client.get_function(FunctionName="order")["Configuration"]
    assert config["DurableConfig"] == {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 1}


def test_an_approval_waits_for_its_callback_sent_through_boto3(
    client: BaseClient, out: Path
) -> None:
    started = start(client, "approval", {"id": "a-1"})
    assert started["Status"] == "RUNNING"
    callback_id = (
        wait_for(lambda: (out / "approval-a-1").exists(), what="the callback id")
        and (out / "approval-a-1").read_text()
    )
    client.send_durable_execution_callback_success(
        CallbackId=callback_id, Result=json.dumps({"approved": True, "by": "ana"}).encode()
    )
    done = finished(client, started["DurableExecutionArn"])
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {"id": "a-1", "decision": {"approved": True, "by": "ana"}}

    # A callback completes once.
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"{}")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.send_durable_execution_callback_success(CallbackId="no-such-callback", Result=b"{}")


def test_parallel_and_map_return_every_branch_result(client: BaseClient) -> None:
    result = start(client, "fanout", {"items": [1, 2, 3]})
    assert result == {"branches": ["left", "right"], "doubled": [2, 4, 6]}


def test_a_step_that_fails_twice_is_retried_and_then_succeeds(
    client: BaseClient, out: Path
) -> None:
    started = start(client, "flaky", {"id": "f-1"})
    assert started["Status"] == "RUNNING"
    done = finished(client, started["DurableExecutionArn"])
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {"answer": "answered on attempt 3"}
    # The SDK numbers attempts from 1; each retry was a new invocation.
    assert lines(out / "attempts-f-1") == ["1", "2", "3"]


def test_a_stopped_execution_does_not_resume(client: BaseClient, out: Path) -> None:
    started = start(client, "order", {"id": "o-stop", "items": [], "wait": 600})
    arn = started["DurableExecutionArn"]
    stopped = client.stop_durable_execution(DurableExecutionArn=arn)
    assert stopped["StopTimestamp"]
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "STOPPED"
    assert not (out / "ship-o-stop").exists()


def test_a_chained_invoke_runs_the_other_function_and_resumes_with_its_result(
    client: BaseClient,
) -> None:
    started = start(client, "chain", {"name": "ana"})
    assert started["Status"] == "RUNNING"
    done = finished(client, started["DurableExecutionArn"])
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {"greeting": "hello ana"}


def test_a_chained_invoke_needs_the_permission_to_invoke(client: BaseClient) -> None:
    reply = client.invoke(FunctionName="chain-unpermitted", Payload=json.dumps({"name": "bo"}))
    # The SDK fails the execution on the refusal, which names what to grant.
    assert reply["FunctionError"] == "Unhandled"
    error = json.loads(reply["Payload"].read())
    assert "AccessDeniedException" in error["errorMessage"]
    assert "permissions:" in error["errorMessage"]
    listed = client.list_durable_executions_by_function(FunctionName="chain-unpermitted")
    assert [e["Status"] for e in listed["DurableExecutions"]] == ["FAILED"]


def test_a_payload_naming_another_functions_execution_resumes_nothing(
    client: BaseClient, out: Path
) -> None:
    started = start(client, "approval", {"id": "a-2"})
    execution = started["DurableExecutionArn"].rsplit("/", 1)[1]
    wait_for(lambda: (out / "approval-a-2").exists(), what="the approval to wait")
    resume = {"TriggerfishDurableResume": execution, "name": "eve"}

    # A plain function gets it as any payload; a durable one resumes only its own.
    assert start(client, "greeter", resume) == "hello eve"
    assert start(client, "flaky", resume) is None

    running = client.get_durable_execution(DurableExecutionArn=started["DurableExecutionArn"])
    assert running["Status"] == "RUNNING"
    client.stop_durable_execution(DurableExecutionArn=started["DurableExecutionArn"])
