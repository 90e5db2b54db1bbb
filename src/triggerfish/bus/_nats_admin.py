"""The NATS server as the NATS bus manages it: connecting, errors, listings, settings.

``translated`` is the one boundary where the driver's errors become Triggerfish's: a
missing stream is an unknown topic, a missing consumer an unknown group (both
``NotFoundError`` with the messages every bus gives), anything else an ``AdapterError``
naming the server and what the bus was doing, with the driver's error as its cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from triggerfish import nats_client
from triggerfish.bus._common import unknown_group, unknown_topic
from triggerfish.bus.base import StartPosition
from triggerfish.errors import AdapterError, ConfigError, TriggerfishError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamManager
    from nats.js.api import ConsumerConfig, ConsumerInfo, StreamConfig, StreamInfo

#: JetStream's error codes the bus tells apart.
STREAM_NOT_FOUND = 10059
STREAM_NAME_IN_USE = 10058
STREAM_STORE_FAILED = 10049
CONSUMER_NOT_FOUND = 10014
CONSUMER_EXISTS = 10148
CONSUMER_NAME_EXISTS = 10013

#: How many items JetStream lists in one page.
_PAGE = 256
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

log = logging.getLogger("triggerfish.bus.nats")


def require_driver() -> None:
    try:
        import nats  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "the NATS bus needs the Python package nats-py: pip install 'triggerfish[brokers]'"
        ) from exc


async def connect(
    url: str, *, where: str, api_timeout: float, within: float
) -> tuple[Client, JetStreamManager]:
    """A connection that reconnects by itself for as long as it is open; the first
    attempt gets ``within`` seconds. AdapterError names the server (``where``, without
    its password) and the reason, also when the server runs without JetStream."""
    failures: list[BaseException] = []  # the last one only
    opened: list[Client] = []  # once connected

    async def errored(exc: Exception) -> None:
        failures[:] = [exc]
        (log.warning if opened else log.debug)("NATS bus at %s: %s", where, describe(exc))

    async def disconnected() -> None:
        if opened and not (opened[0].is_closed or opened[0].is_draining):
            log.warning("NATS bus: disconnected from %s, reconnecting", where)

    async def reconnected() -> None:
        log.info("NATS bus: reconnected to %s", where)

    connecting = nats_client.connect(
        url, name="triggerfish-bus", error_cb=errored, disconnected_cb=disconnected,
        reconnected_cb=reconnected, connect_timeout=min(within, 5.0), allow_reconnect=True,
        max_reconnect_attempts=-1, reconnect_time_wait=1.0,
    )  # fmt: skip
    try:
        nc = await asyncio.wait_for(connecting, within)
    except Exception as exc:
        reason = failures[-1] if failures else exc
        message = f"cannot connect to the NATS server at {where}: {describe(reason)}"
        raise AdapterError(message) from reason
    opened.append(nc)
    jsm = nc.jsm(timeout=api_timeout)
    try:
        await jsm.account_info()
    except Exception as exc:
        await nc.close()
        raise AdapterError(
            f"the NATS server at {where} does not answer JetStream requests "
            f"({describe(exc)}): start nats-server with JetStream enabled (-js)"
        ) from exc
    return nc, jsm


def describe(exc: BaseException) -> str:
    text = getattr(exc, "description", None) or str(exc)
    return str(text) or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)


def from_driver(exc: Exception) -> bool:
    import nats.errors

    return isinstance(exc, nats.errors.Error | OSError | TimeoutError)


def error_code(exc: Exception) -> int | None:
    code = getattr(exc, "err_code", None)
    return code if isinstance(code, int) else None


@contextlib.contextmanager
def translated(
    where: str, action: str, topic: str | None = None, group: str | None = None
) -> Iterator[None]:
    """Raise the driver's errors inside as Triggerfish's (``where`` names the server)."""
    try:
        yield
    except TriggerfishError:
        raise
    except Exception as exc:
        if not from_driver(exc):
            raise
        code = error_code(exc)
        if topic is not None and code == STREAM_NOT_FOUND:
            raise unknown_topic(topic) from exc
        if topic is not None and group is not None and code == CONSUMER_NOT_FOUND:
            raise unknown_group(topic, group) from exc
        raise AdapterError(
            f"NATS JetStream at {where} could not {action}: {describe(exc)}"
        ) from exc


async def request(nc: Client, name: str, body: dict[str, Any], within: float) -> dict[str, Any]:
    """One JetStream API request with a JSON answer, for calls the client lacks."""
    from nats.js.errors import APIError

    answer = await nc.request(f"$JS.API.{name}", json.dumps(body).encode(), within)
    data: dict[str, Any] = json.loads(answer.data)
    error = data.get("error")
    if error:
        raise APIError(
            code=error.get("code"),
            err_code=error.get("err_code"),
            description=error.get("description"),
        )
    return data


async def list_streams(nc: Client, subject_filter: str, within: float) -> list[StreamInfo]:
    """Every stream with a subject that ``subject_filter`` matches."""
    from nats.js.api import StreamInfo

    out: list[StreamInfo] = []
    while True:
        body = {"subject": subject_filter, "offset": len(out)}
        page = (await request(nc, "STREAM.LIST", body, within)).get("streams") or []
        out.extend(StreamInfo.from_response(item) for item in page)
        if len(page) < _PAGE:
            return out


async def list_consumers(nc: Client, stream: str, within: float) -> list[ConsumerInfo]:
    from nats.js.api import ConsumerInfo

    out: list[ConsumerInfo] = []
    while True:
        body = {"offset": len(out)}
        page = (await request(nc, f"CONSUMER.LIST.{stream}", body, within)).get("consumers")
        out.extend(ConsumerInfo.from_response(item) for item in page or [])
        if len(page or []) < _PAGE:
            return out


def stream_config(
    stream: str,
    topic: str,
    subject: str,
    *,
    retention: float | None,
    dedupe_window: float,
    storage: str,
    replicas: int,
) -> StreamConfig:
    """A topic's stream. JetStream refuses a duplicate window longer than ``max_age``:
    a topic keeps its events' pairs no longer than the events themselves."""
    from nats.js import api

    return api.StreamConfig(
        name=stream,
        description=topic,
        subjects=[subject],
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        storage=api.StorageType(storage),
        num_replicas=replicas,
        max_age=retention or 0.0,
        duplicate_window=min(dedupe_window, retention or math.inf),
    )


def group_config(
    consumer: str, group: str, *, start: StartPosition, ack_wait: float, max_in_flight: int
) -> ConsumerConfig:
    """A group's durable pull consumer; Triggerfish counts attempts itself, so JetStream
    delivers an event as often as it is released (no ``max_deliver``)."""
    from nats.js import api

    return api.ConsumerConfig(
        durable_name=consumer,
        description=group,
        deliver_policy=api.DeliverPolicy.ALL if start == "earliest" else api.DeliverPolicy.NEW,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
        max_ack_pending=max_in_flight,
        replay_policy=api.ReplayPolicy.INSTANT,
    )


def start_time(since: float) -> datetime.datetime:
    """``since`` a microsecond early, to the microsecond (JetStream's precision for it
    here), so that an event stamped at ``since`` itself is never left out."""
    return _EPOCH + datetime.timedelta(microseconds=math.floor(since * 1e6) - 1)
