"""The SDK's App: the manifest it declares, and typed handlers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from triggerfish import App, InvalidEventError
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import load_manifest
from triggerfish.functions.project import load_project

APP = """
from pydantic import BaseModel

from triggerfish import App
from triggerfish.functions.triggers import RetryPolicy

app = App()
app.topic("orders", retention="7d")
app.broker("alerts", kind="redis", url="redis://localhost:6379/0")


class Order(BaseModel):
    id: str
    total: int


@app.on(
    "orders",
    pattern={"type": ["order.created"]},
    retry=RetryPolicy(max_attempts=5, backoff=0.5),
    dead_letter="orders-failed",
    batch=1,
    memory=256,
    timeout=30,
)
@app.schedule("rate(5 minutes)", name="sweep")
def ship(order: Order, context):
    return {"shipped": order.id}


@app.bucket("uploads", events=["s3:ObjectCreated:*"], prefix="in/", suffix=".csv")
@app.http("POST /orders/{id}", auth="token", cors=True)
@app.function(environment={"MODE": "fast"}, max_concurrency=4, dead_letter="async-failed")
def ingest(event, context):
    return event


@app.webhook(
    "github", topic="github-events", format="github", pattern={"type": ["com.github.push"]}
)
def on_push(event, context):
    return None


@app.source("redis", "redis://localhost:6379/0", stream="jobs", start="earliest", name="jobs")
def jobs(event, context):
    return None
"""

YAML = """
topics:
  orders: {retention: 7d}
brokers:
  alerts: {kind: redis, url: "redis://localhost:6379/0"}
webhooks:
  github: {topic: github-events, format: github}
functions:
  ship:
    handler: app.ship
    code: .
    memory: 256
    timeout: 30
    triggers:
      - topic: orders
        pattern: {type: [order.created]}
        retry: {max_attempts: 5, backoff: 0.5}
        dead_letter: orders-failed
        batch_size: 1
      - name: sweep
        schedule: {expression: rate(5 minutes)}
  ingest:
    handler: app.ingest
    code: .
    environment: {MODE: fast}
    max_concurrency: 4
    dead_letter: async-failed
    triggers:
      - bucket: {name: uploads, events: ["s3:ObjectCreated:*"], prefix: in/, suffix: .csv}
      - http: {route: "POST /orders/{id}", auth: token, cors: true}
  on_push:
    handler: app.on_push
    code: .
    triggers:
      - topic: github-events
        pattern: {type: [com.github.push]}
  jobs:
    handler: app.jobs
    code: .
    triggers:
      - name: jobs
        source: {kind: redis, url: "redis://localhost:6379/0", stream: jobs}
        start: earliest
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_an_app_and_its_yaml_form_give_equal_manifests(tmp_path: Path) -> None:
    project = write(tmp_path / "both", {"app.py": APP, "triggerfish.yaml": YAML})

    from_app = load_project(project / "app.py")
    from_yaml = load_manifest(project)

    assert from_app == from_yaml
    assert from_app.path == project / "triggerfish.yaml"
    assert from_app.code_dir("ship") == project / "."


def test_a_folder_with_only_app_py_and_module_colon_attr_are_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write(tmp_path / "proj", {"service.py": APP, "app.py": APP})
    by_folder = load_project(project)
    monkeypatch.chdir(project)
    by_module = load_project("service:app")
    assert (
        set(by_folder.functions)
        == set(by_module.functions)
        == {
            "ship",
            "ingest",
            "on_push",
            "jobs",
        }
    )
    assert by_module.functions["ship"].handler == "service.ship"


def test_a_manifest_may_add_the_functions_of_an_app(tmp_path: Path) -> None:
    project = write(
        tmp_path / "mixed",
        {
            "app.py": APP,
            "triggerfish.yaml": """
                app: app.py
                topics:
                  orders: {retention: 7d}
                functions:
                  legacy: {handler: main.handler, code: ., triggers: [{topic: orders}]}
            """,
            "main.py": "def handler(event, context):\n    return 1\n",
        },
    )
    manifest = load_project(project)
    assert set(manifest.functions) == {"legacy", "ship", "ingest", "on_push", "jobs"}
    assert manifest.topics["orders"].retention == 7 * 86400


def test_a_function_declared_in_the_manifest_and_the_app_is_refused(tmp_path: Path) -> None:
    project = write(
        tmp_path / "clash",
        {
            "app.py": APP,
            "triggerfish.yaml": "app: app.py\nfunctions:\n  ship: {handler: app.ship, code: .}\n",
        },
    )
    with pytest.raises(ConfigError, match=r"'ship' is declared both in triggerfish\.yaml"):
        load_project(project)


def test_bad_settings_name_the_function_and_key(tmp_path: Path) -> None:
    source = """
        from triggerfish import App
        app = App()

        @app.on("orders", memory=64)
        def ship(event, context):
            return None
    """
    project = write(tmp_path / "bad", {"app.py": source})
    with pytest.raises(ConfigError) as caught:
        load_project(project / "app.py")
    message = str(caught.value)
    assert (
        "app.py: functions.ship.memory: expected an integer from 128 to 10240 MB, got 64" in message
    )


def test_an_unknown_setting_lists_the_known_ones(tmp_path: Path) -> None:
    source = """
        from triggerfish import App
        app = App()

        @app.on("orders", memroy=256)
        def ship(event, context):
            return None
    """
    project = write(tmp_path / "typo", {"app.py": source})
    with pytest.raises(
        ConfigError, match=r"functions\.ship\.memroy: unknown key; expected one of: handler"
    ):
        load_project(project)


def test_two_functions_with_one_name_are_refused(tmp_path: Path) -> None:
    source = """
        from triggerfish import App
        app = App()

        @app.on("a")
        def ship(event, context):
            return None

        @app.function(name="ship")
        @app.on("b")
        def ship_again(event, context):
            return None
    """
    project = write(tmp_path / "twice", {"app.py": source})
    with pytest.raises(ConfigError, match="two functions are named 'ship'"):
        load_project(project)


def test_a_setting_given_twice_with_different_values_is_refused() -> None:
    app = App()
    with pytest.raises(ConfigError, match=r"functions\.f\.memory: set twice"):

        @app.function(memory=512)
        @app.function(memory=256)
        def f(event: object, context: object) -> None:
            return None


def test_import_errors_show_the_users_traceback(tmp_path: Path) -> None:
    project = write(tmp_path / "broken", {"app.py": "import helpers\n", "helpers.py": "1 / 0\n"})
    with pytest.raises(ConfigError) as caught:
        load_project(project)
    message = str(caught.value)
    assert "importing it failed" in message
    assert 'helpers.py", line 1' in message
    assert "ZeroDivisionError: division by zero" in message


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    project = write(tmp_path / "syntax", {"app.py": "def broken(:\n    pass\n"})
    with pytest.raises(ConfigError, match=r"(?s)a syntax error:.*app.py\", line 1"):
        load_project(project)


def test_a_module_without_an_app_or_a_folder_without_a_project(tmp_path: Path) -> None:
    project = write(tmp_path / "none", {"app.py": "x = 1\n"})
    with pytest.raises(ConfigError, match=r"no App in this module; declare one \(app = App\(\)\)"):
        load_project(project)
    empty = write(tmp_path / "empty", {})
    with pytest.raises(ConfigError, match=r"no triggerfish\.yaml and no app\.py in this folder"):
        load_project(empty)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    source = "from triggerfish import App\napp = App()\n\n@app.on('{topic}')\ndef f(e, c): pass\n"
    project = write(tmp_path / "again", {"app.py": source.format(topic="first")})
    assert load_project(project).functions["f"].triggers[0].topic == "first"
    (project / "app.py").write_text(source.format(topic="second"))
    assert load_project(project).functions["f"].triggers[0].topic == "second"


# -- typed handlers -----------------------------------------------------------------------

pydantic = pytest.importorskip("pydantic")


class Order(pydantic.BaseModel):
    id: str
    total: int


app = App()


@app.on("orders")
def ship(order: Order, context: object) -> dict[str, object]:
    return {"shipped": order.id, "total": order.total}


@app.on("orders-batch", batch=10)
def ship_many(orders: list[Order], context: object) -> list[str]:
    return [order.id for order in orders]


@app.on("plain")
def untyped(event: dict[str, object], context: object) -> dict[str, object]:
    return event


@app.on("async")
async def ship_async(order: Order, context: object) -> str:
    return order.id


def cloud_event(data: object) -> dict[str, object]:
    return {"specversion": "1.0", "id": "e1", "source": "t", "type": "order.created", "data": data}


def test_a_typed_handler_gets_the_events_data_as_its_model() -> None:
    assert ship(cloud_event({"id": "A-1", "total": 3}), None) == {"shipped": "A-1", "total": 3}
    assert ship(Order(id="A-2", total=1), None) == {"shipped": "A-2", "total": 1}
    assert ship({"id": "A-3", "total": "4"}, None) == {"shipped": "A-3", "total": 4}
    assert ship_many([cloud_event({"id": "B", "total": 1})] * 2, None) == ["B", "B"]
    assert asyncio.run(ship_async(cloud_event({"id": "C", "total": 1}), None)) == "C"


def test_an_untyped_handler_is_returned_unchanged() -> None:
    assert untyped.__name__ == "untyped"
    assert untyped({"a": 1}, None) == {"a": 1}
    assert "__wrapped__" not in vars(untyped)


def test_data_that_does_not_fit_raises_invalid_event_with_pydantics_errors() -> None:
    with pytest.raises(InvalidEventError) as caught:
        ship(cloud_event({"id": "A-1", "total": "many"}), None)
    message = str(caught.value)
    assert message.startswith("the event's data does not fit Order: 1 error(s):")
    assert "total: Input should be a valid integer" in message


def test_importing_triggerfish_pulls_no_server_module() -> None:
    heavy = ("fastapi", "sqlalchemy", "uvicorn", "starlette", "yaml", "pydantic", "httpx")
    script = (
        "import sys, triggerfish\n"
        "from triggerfish import App\n"
        "App().on('orders')(lambda e, c: None)\n"
        f"heavy = {heavy!r}\n"
        "internal = ('triggerfish.functions', 'triggerfish.store', 'triggerfish.bus',"
        " 'triggerfish.api', 'triggerfish.dispatch', 'triggerfish.node', 'triggerfish.cli')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith(internal)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
