"""The manifest: what a valid triggerfish.yaml gives, and what each mistake says."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from triggerfish.errors import ConfigError
from triggerfish.functions import (
    FunctionConfig,
    TriggerConfig,
    load_manifest,
    parse_function_config,
)

SHOP = Path(__file__).parents[2] / "fixtures" / "manifests" / "shop"


def write_manifest(folder: Path, text: str, *, code: dict[str, str] | None = None) -> Path:
    """A manifest in ``folder`` with code files (path -> text); defaults to resize/main.py."""
    (folder / "triggerfish.yaml").write_text(textwrap.dedent(text))
    for relative, body in (code if code is not None else {"resize/main.py": ""}).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(body)
    return folder


def load_error(folder: Path, text: str, **kwargs: dict[str, str]) -> str:
    write_manifest(folder, text, **kwargs)
    with pytest.raises(ConfigError) as caught:
        load_manifest(folder)
    return str(caught.value)


def test_the_shop_manifest_loads_with_defaults_filled_in() -> None:
    manifest = load_manifest(SHOP)

    assert manifest.path == SHOP / "triggerfish.yaml"
    assert manifest.topics["orders"].retention == 7 * 86400
    resize = manifest.functions["resize"]
    assert (resize.handler, resize.runtime, resize.memory, resize.timeout) == (
        "main.handler",
        "python3.11",
        256,
        30.0,
    )
    assert resize.environment == {"STAGE": "dev", "WIDTH": "640"}
    assert resize.max_concurrency == 10
    assert (resize.async_retry.max_attempts, resize.async_retry.max_age) == (3, 21600)
    trigger = resize.triggers[0]
    assert trigger.pattern == {"type": ["order.created"]}
    assert (trigger.retry.max_attempts, trigger.retry.max_age) == (5, 3600)
    assert (trigger.retry.backoff, trigger.retry.max_backoff) == (1.0, 300.0)
    assert (trigger.batch_size, trigger.start, trigger.dead_letter) == (
        1,
        "latest",
        "orders-failed",
    )
    assert manifest.code_dir("resize") == SHOP / "resize"
    assert manifest.code_dir("notify") == SHOP / "notifier"
    notify = manifest.functions["notify"]
    assert notify.async_retry.max_age == 7200
    assert notify.triggers[0].batch_size == 10


def test_a_manifest_file_path_works_as_well_as_its_folder() -> None:
    assert load_manifest(SHOP / "triggerfish.yaml").functions.keys() == {"resize", "notify"}


def test_group_ids_come_from_function_and_trigger_name() -> None:
    manifest = load_manifest(SHOP)

    assert manifest.functions["resize"].triggers[0].group_id("resize") == "resize.orders"
    assert manifest.functions["notify"].triggers[0].group_id("notify") == "notify.on-orders"


def test_stored_settings_round_trip_without_code_and_triggers() -> None:
    config = load_manifest(SHOP).functions["resize"]

    stored = config.version_config()

    assert "triggers" not in stored
    assert "code" not in stored
    again = FunctionConfig.model_validate(stored)
    assert again.version_config() == stored
    trigger = config.triggers[0]
    assert TriggerConfig.model_validate(trigger.model_dump(mode="json")) == trigger


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "memory: big",
            'functions.resize.memory: expected an integer from 128 to 10240 MB, got "big"',
        ),
        ("memory: 64", "functions.resize.memory: expected an integer from 128 to 10240 MB, got 64"),
        (
            "timeout: 901",
            "functions.resize.timeout: expected seconds above 0, at most 900, got 901",
        ),
        ("runtime: node18", 'functions.resize.runtime: expected "python" or "python3.X"'),
        ("max_concurrency: 0", "functions.resize.max_concurrency: expected an integer from 1"),
        ("environment: {1ABC: x}", "functions.resize.environment.1ABC: expected a variable name"),
        ("environment: {A: [1]}", "functions.resize.environment.A: expected a string"),
        ("memroy: 256", "functions.resize.memroy: unknown key; expected one of: handler, code,"),
        ("async_retry: {max_age: soon}", "functions.resize.async_retry.max_age: expected a dura"),
        ("dead_letter: 'no spaces'", "functions.resize.dead_letter: expected a topic name"),
    ],
)
def test_each_function_setting_mistake_names_file_key_and_expectation(
    tmp_path: Path, snippet: str, expected: str
) -> None:
    message = load_error(
        tmp_path,
        f"""
        functions:
          resize:
            handler: main.handler
            {snippet}
        """,
    )

    assert message.startswith(f"{tmp_path / 'triggerfish.yaml'}: ")
    assert expected in message
    assert "pydantic" not in message


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (
            "{topic: orders, retry: {max_attempts: 0}}",
            "functions.resize.triggers[0].retry.max_attempts: expected an integer from 1 to 1000, "
            "got 0",
        ),
        (
            "{topic: orders, retry: {max_age: 3w}}",
            "functions.resize.triggers[0].retry.max_age: expected a duration: seconds as an "
            'integer, or a number with s, m, h or d ("30s", "7d"), got "3w"',
        ),
        (
            "{topic: orders, retry: {backoff: 10, max_backoff: 5}}",
            "functions.resize.triggers[0].retry: max_backoff (5.0) must not be below backoff",
        ),
        ("{topic: orders, start: middle}", 'triggers[0].start: expected "latest" or "earliest"'),
        ("{topic: orders, batch_size: 0}", "triggers[0].batch_size: expected an integer from 1"),
        ("{topic: orders, pattern: [a]}", "triggers[0].pattern: expected an event pattern"),
        ("{name: x}", "functions.resize.triggers[0]: a trigger needs exactly one of topic, sched"),
        ("{topic: a, schedule: b}", "triggers[0]: a trigger needs exactly one of topic, schedule,"),
        ("{topic: orders, name: Bad}", "functions.resize.triggers[0].name: expected a name"),
        ("orders", "functions.resize.triggers[0]: expected a mapping with keys topic, schedule"),
        ("{topic: orders, batch: 3}", "triggers[0].batch: expected a mapping with size"),
        ("{topic: orders, batches: 3}", "triggers[0].batches: unknown key; expected one of"),
        ("{topic: orders, batch_size: 2, batch: {size: 3}}", "triggers[0]: batch_size and batch"),
        ("{topic: orders, batch: {size: 9, window: 5m 1s}}", "triggers[0].batch.window: expected"),
        ("{topic: orders, batch: {size: 9, window: 301}}", "at most 300 seconds"),
        ("{topic: orders, batch: {size: 9, max_bytes: 7MB}}", "triggers[0].batch.max_bytes"),
        ("{topic: orders, ordering: {key: 'data..x'}}", "triggers[0].ordering.key: expected a key"),
    ],
)
def test_each_trigger_mistake_names_its_index_and_key(
    tmp_path: Path, trigger: str, expected: str
) -> None:
    message = load_error(
        tmp_path,
        f"""
        functions:
          resize:
            handler: main.handler
            triggers:
              - {trigger}
        """,
    )

    assert expected in message


def test_two_triggers_with_one_name_are_refused(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        functions:
          resize:
            handler: main.handler
            triggers: [{topic: orders}, {topic: orders}]
        """,
    )

    assert "functions.resize: two triggers are named 'orders'; give each a distinct 'name'" in (
        message
    )


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        functions:
          resize: {handler: main.handler, memory: 1, timeout: 0}
        """,
    )

    assert "functions.resize.memory:" in message
    assert "functions.resize.timeout:" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the manifest is empty; expected a mapping with 'functions'"),
        ("- a\n- b\n", 'expected a mapping with \'functions\' at the top, got ["a", "b"]'),
        ("topics: {}\n", "functions: missing; expected a mapping of function names"),
        ("functions: {Resize: {handler: main.handler}}\n", "functions.Resize: expected a name"),
        ("functions: {resize: main.handler}\n", "functions.resize: expected a mapping with keys"),
        ("functions: {resize: {handler: main}}\n", 'functions.resize.handler: expected "module.f'),
        ("functions: {resize: {memory: 256}}\n", "functions.resize.handler: missing; expected"),
        ("functions: {}\ntopics: {orders: {retention: 0}}\n", "topics.orders.retention: expected"),
        ("functions: {}\nversion: 2\n", "version: unknown key; expected one of: topics, functions"),
    ],
)
def test_top_level_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(tmp_path, text)


def test_yaml_syntax_errors_give_line_and_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, "functions:\n  resize: {handler: main.handler\n")

    assert message.startswith(f"{tmp_path / 'triggerfish.yaml'}:3:1: invalid YAML:")


def test_a_key_written_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        "functions:\n  resize: {handler: main.handler}\n  resize: {handler: main.other}\n",
    )

    assert ":3:3: invalid YAML: the key 'resize' appears twice" in message


def test_durations_accept_units(tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        """
        topics: {a: {retention: 30s}, b: {retention: 5m}, c: {retention: 2h}, d: {retention: 90}}
        functions: {}
        """,
        code={},
    )

    topics = load_manifest(tmp_path).topics

    assert [topics[name].retention for name in "abcd"] == [30, 300, 7200, 90]


def test_a_missing_code_folder_is_named(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "functions:\n  resize: {handler: main.handler, code: ./src}\n", code={}
    )

    assert message == (
        f"{tmp_path / 'triggerfish.yaml'}: functions.resize.code: "
        f"the code folder {tmp_path / 'src'} does not exist"
    )


def test_the_default_code_folder_is_named_after_the_function(tmp_path: Path) -> None:
    message = load_error(tmp_path, "functions:\n  thumbs: {handler: main.handler}\n")

    assert "functions.thumbs.code (default ./thumbs): the code folder" in message


def test_a_missing_handler_module_is_named(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        "functions:\n  resize: {handler: app.main.handler}\n",
        code={"resize/main.py": ""},
    )

    assert "functions.resize.handler: the handler module app/main.py is not in" in message


def test_a_package_module_is_a_valid_handler_module(tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        "functions:\n  resize: {handler: app.handler}\n",
        code={"resize/app/__init__.py": "def handler(e, c): return 1\n"},
    )

    assert load_manifest(tmp_path).functions["resize"].handler == "app.handler"


def test_a_folder_without_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no triggerfish\.yaml in this folder"):
        load_manifest(tmp_path)


def test_settings_given_apart_from_a_manifest_are_checked_the_same_way() -> None:
    config = parse_function_config("resize", {"handler": "main.handler", "memory": 512})

    assert config.memory == 512
    with pytest.raises(ConfigError) as caught:
        parse_function_config("resize", {"handler": "main.handler", "triggers": [{"topic": 5}]})
    assert str(caught.value).startswith("config: triggers[0].topic: expected a topic name")
    with pytest.raises(ConfigError, match=r"^config: function name: expected a name"):
        parse_function_config("Resize", {"handler": "main.handler"})
    with pytest.raises(ConfigError, match=r"^config: expected a mapping of function settings"):
        parse_function_config("resize", ["main.handler"])
