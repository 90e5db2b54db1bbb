"""Settings: the only place that reads the environment and ``triggerfish.toml``.

Precedence, highest first: explicit values (command-line flags), ``TRIGGERFISH_*``
environment variables, ``triggerfish.toml`` in the working directory (or the file
named by ``TRIGGERFISH_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.observe.disk import parse_threshold
from triggerfish.runtime.base import DEFAULT_REGION
from triggerfish.runtime.node.sdk import default_sdk_dir

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".triggerfish")
    store_url: str = ""  # default: SQLite file in data_dir; postgresql://... for a cluster
    bus_url: str = ""  # default: SQLite file in data_dir; nats://... for a cluster
    url: str = ""  # where the CLI finds the server; default http://host:port
    token: str = ""  # API token for the CLI; default: the admin token file
    profile: str = ""  # the CLI's saved context to use (``triggerfish login --profile``)
    # How long a publish of a (source, id) pair seen before stores nothing: seconds or a
    # duration ("10m", "1d"). The bus keeps one small row per event published within it.
    dedupe_window: float = 86400.0
    sync_payload_limit: int = 6 * MB
    async_payload_limit: int = 1 * MB
    header_size_limit: int = 64 * 1024  # bytes of a request's line and headers (else 431)
    header_count_limit: int = 100  # header fields of one request (else 431)
    json_depth_limit: int = 64  # levels of nesting of event data and payloads (else 400)
    shutdown_grace: float = 10.0  # seconds for invocations in flight at shutdown
    lease_margin: float = 30.0  # past a function's timeout, before a dead node's events return
    leader_lease: float = 5.0  # seconds; on a cluster, a dead leader is replaced within two
    throttle_wait: float = 1.0  # how long a synchronous call waits for a free slot
    idle_ttl: float = 300.0  # seconds before an idle environment is reaped
    # A deploy that makes a new version starts one environment of it at once, so its
    # first call is warm (it stops after idle_ttl like any other); false: on first call.
    warm_on_deploy: bool = True
    retention: float = 7 * 86400.0  # retention of topics created without one
    housekeeping_interval: float = 60.0  # seconds between retention passes
    # How long invocation records, their logs and chain events are kept: seconds or a
    # duration ("7d", "12h"); a function's manifest may say otherwise (docs/guide.md).
    records_retention: float = 7 * 86400.0
    # SQLite files made by this node give the space retention frees back to the
    # filesystem (incremental auto-vacuum, see docs/guide.md); it costs their writes
    # about a tenth of the drain rate. false: freed pages are reused, and a file stays at
    # its largest size.
    sqlite_vacuum: bool = True
    # Free disk kept for accepted work: "5%", "500MB", "0" (none); "": 5% or 500 MB,
    # whichever is smaller. Below it new events are refused (observe/disk.py).
    min_free_disk: str = ""
    log_level: str = "info"
    log_format: str = "text"  # of the server's own log lines: text or json (one object a line)
    memory_capacity: int = 0  # MB that environments may use in all; 0: the machine's memory
    sandbox: bool = True  # confine functions where the machine allows (docs/security.md)
    sandbox_dir: str = ""  # what functions' users reach; default: beside the data (see docs)
    node_sdk_dir: str = ""  # the AWS SDK of Node.js functions; default: data_dir/runtimes/...
    max_processes: int = 256  # processes and threads an environment may have (sandboxed)
    source_process: bool = True  # broker sources in a process of their own (else in the node)
    price_per_request: float = 0.20 / 1_000_000  # USD, AWS Lambda's published x86 price
    price_per_gb_second: float = 0.0000166667  # USD
    region: str = DEFAULT_REGION  # AWS_REGION of functions, and the region of every ARN
    # OpenTelemetry (docs/tracing.md): spans go to this OTLP/HTTP endpoint; empty: off.
    # Read from OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME as well.
    otel_endpoint: str = ""
    otel_service_name: str = "triggerfish"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'store.db'}"

    @property
    def resolved_bus_url(self) -> str:
        return self.bus_url or f"sqlite:///{self.data_dir / 'bus.db'}"

    @property
    def resolved_node_sdk_dir(self) -> Path:
        """Where ``triggerfish runtimes install-sdk`` puts the AWS SDK v3 packages of
        Node.js functions, and where the node looks for them."""
        return Path(self.node_sdk_dir) if self.node_sdk_dir else default_sdk_dir(self.data_dir)

    @property
    def token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def server_url_path(self) -> Path:
        """Where ``triggerfish up`` records the URL it serves, for the CLI to find it."""
        return self.data_dir / "server.url"

    @property
    def listen_url(self) -> str:
        """Where a server started with these settings is reached on this machine."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def resolved_url(self) -> str:
        return self.url.rstrip("/") if self.url else self.listen_url


_FIELDS = {f.name: f for f in fields(Settings)}
_PREFIX = "TRIGGERFISH_"
# Short names kept for convenience: TRIGGERFISH_DATA as DESIGN.md names it.
_ALIASES = {"data": "data_dir", "store": "store_url", "bus": "bus_url"}
# OpenTelemetry's own variables, read as settings (below the TRIGGERFISH_* ones).
_OTEL = {"OTEL_EXPORTER_OTLP_ENDPOINT": "otel_endpoint", "OTEL_SERVICE_NAME": "otel_service_name"}


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of a person's own Triggerfish files (the CLI's saved contexts), by the
    XDG convention: ``$XDG_CONFIG_HOME/triggerfish``, else ``~/.config/triggerfish``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    if not base or not Path(base).is_absolute():  # the XDG spec says to ignore a relative one
        base = str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "triggerfish"


# Seconds, or a number with s, m, h, d or w.
_DURATIONS = {"records_retention", "dedupe_window"}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(raw: Any) -> float:
    """Seconds from ``3600``, ``"30m"``, ``"12h"``, ``"7d"`` or ``"2w"``; ValueError else."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, int | float):
        seconds = float(raw)
    else:
        text = str(raw).strip().lower()
        number = text.rstrip("smhdw")
        unit = text[len(number) :]
        if unit not in _DURATION_UNITS or not number:
            raise ValueError(raw)
        seconds = float(number) * _DURATION_UNITS[unit]
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(raw)
    return seconds


def _coerce(name: str, raw: Any, origin: str) -> Any:
    default = getattr(Settings(), name)
    if name in _DURATIONS:
        try:
            return parse_duration(raw)
        except ValueError:
            raise ConfigError(
                f"{origin}: {name}: expected a duration above 0: seconds or a number with"
                f' s, m, h, d or w ("7d", "12h"), got {raw!r}'
            ) from None
    try:
        if isinstance(default, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(str(raw))
        return str(raw)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise ConfigError(f"{origin}: {name}: expected {kind}, got {raw!r}") from None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    toml_path = Path(env.get(_PREFIX + "CONFIG", str((cwd or Path.cwd()) / "triggerfish.toml")))
    if toml_path.is_file():
        try:
            document = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: {exc}") from exc
        for key, raw in document.items():
            name = _ALIASES.get(key, key.replace("-", "_"))
            if name not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise ConfigError(f"{toml_path}: unknown setting {key!r} (known: {known})")
            values[name] = _coerce(name, raw, str(toml_path))
    for key, name in _OTEL.items():
        if env.get(key):
            values[name] = env[key]
    for key, raw in env.items():
        if not key.startswith(_PREFIX) or key == _PREFIX + "CONFIG":
            continue
        suffix = key[len(_PREFIX) :].lower()
        name = _ALIASES.get(suffix, suffix)
        if name in _FIELDS:
            values[name] = _coerce(name, raw, f"environment {key}")
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw, f"option --{name.replace('_', '-')}")
    settings = replace(Settings(), **values)
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"log_format: expected text or json, got {settings.log_format!r}")
    parse_threshold(settings.min_free_disk)  # a clear error now, not at start
    return settings
