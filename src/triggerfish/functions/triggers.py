"""Triggers in the manifest: what feeds a function, how its events are filtered, and
how failed deliveries are retried and dead-lettered."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_RULE
from triggerfish.errors import PatternError
from triggerfish.functions.cors import CorsOptions, cors_option
from triggerfish.functions.fields import (
    DURATION_RULE,
    EXPECTED,
    NAME_RULE,
    PLAIN,
    Duration,
    Name,
    StrictModel,
    TopicName,
)
from triggerfish.functions.flow import (
    KEY_PATH_RULE,
    ConcurrencyOptions,
    DebounceOptions,
    KeyPath,
    Priority,
    RateOptions,
)
from triggerfish.functions.references import SealedSecret, is_sealed, sealed
from triggerfish.patterns import compile as compile_pattern


class TopicConfig(StrictModel):
    retention: Duration | None = Field(
        default=None, gt=0, description=f"{DURATION_RULE}, above zero (how long events are kept)"
    )


class RetryPolicy(StrictModel):
    """How a trigger retries a failed delivery before dead-lettering it."""

    max_attempts: int = Field(default=3, ge=1, le=1000, description="an integer from 1 to 1000")
    max_age: Duration = Field(default=86400, gt=0, description=f"{DURATION_RULE}, above zero")
    backoff: float = Field(default=1.0, gt=0, le=3600, description="seconds above 0, at most 3600")
    max_backoff: float = Field(
        default=300.0, gt=0, le=86400, description="seconds above 0, at most 86400"
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> RetryPolicy:
        if self.max_backoff < self.backoff:
            raise PydanticCustomError(
                PLAIN, "max_backoff ({max}) must not be below backoff ({min})",
                {"max": self.max_backoff, "min": self.backoff},
            )  # fmt: skip
        return self


def _check_pattern(pattern: dict[str, Any] | None) -> dict[str, Any] | None:
    if pattern is not None:
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            raise PydanticCustomError(EXPECTED, f"expected a valid event pattern: {exc}") from None
    return pattern


class AsyncRetry(StrictModel):
    """Retries of an asynchronous invoke (``InvocationType=Event``)."""

    max_attempts: int = Field(default=3, ge=1, le=100, description="an integer from 1 to 100")
    max_age: Duration = Field(default=21600, gt=0, description=f"{DURATION_RULE}, above zero")


BUCKET_EVENT_TYPE = "com.amazonaws.s3."


def _expression(value: Any) -> Any:
    """``schedule: "rate(5 minutes)"`` is short for ``schedule: {expression: ...}``."""
    return {"expression": value} if isinstance(value, str) else value


def _bucket_name(value: Any) -> Any:
    """``bucket: photos`` is short for ``bucket: {name: photos}``."""
    return {"name": value} if isinstance(value, str) else value


class ScheduleOptions(StrictModel):
    """A schedule: each firing is one event."""

    expression: str = Field(
        description='"rate(5 minutes)", "cron(0 12 * * ? *)" or a five-field cron line'
    )
    timezone: str = Field(default="UTC", description='an IANA time zone such as "Europe/Paris"')
    missed: Literal["skip", "catch_up"] = Field(
        default="skip", description='"skip" or "catch_up": what to do with slots missed while down'
    )
    catch_up_limit: int = Field(
        default=100, ge=1, le=10000, description="an integer from 1 to 10000: most slots caught up"
    )


class BucketOptions(StrictModel):
    """Changes of objects in a bucket of the built-in object store."""

    name: str = Field(description="a bucket name")
    events: list[str] = Field(
        default_factory=lambda: ["s3:ObjectCreated:*"],
        description='a list of S3 event names such as "s3:ObjectCreated:*", "ObjectRemoved:Delete"',
    )
    prefix: str = Field(default="", description="a key prefix, such as photos/")
    suffix: str = Field(default="", description="a key suffix, such as .jpg")

    def filters(self) -> list[dict[str, Any]]:
        """Event patterns (all must match) selecting this trigger's changes among the
        bucket's events. Bucket events are CloudEvents of type
        ``com.amazonaws.s3.<event name>`` (``...ObjectCreated:Put``) whose subject is the
        object key."""
        types: list[Any] = []
        for name in self.events:
            name = name.removeprefix("s3:")
            if name.endswith("*"):
                types.append({"prefix": BUCKET_EVENT_TYPE + name[:-1]})
            else:
                types.append(BUCKET_EVENT_TYPE + name)
        out: list[dict[str, Any]] = [{"type": types}]
        if self.prefix:
            out.append({"subject": [{"prefix": self.prefix}]})
        if self.suffix:
            out.append({"subject": [{"suffix": self.suffix}]})
        return out


MAX_WINDOW = 300  # seconds, as Lambda's MaximumBatchingWindowInSeconds
MAX_BATCH_BYTES = 6 * 1024 * 1024  # Lambda's payload limit for an invocation
_BYTES_RE = re.compile(r"^\s*(\d+)\s*(B|KB|MB)?\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024 * 1024}
BYTES_RULE = 'a size: bytes as an integer, or with B, KB or MB ("256KB", "1MB"; 1 KB is 1024 B)'


def _parse_bytes(value: Any) -> Any:
    """``262144``, ``"256KB"`` or ``"1MB"`` as bytes; None (as a stored trigger has it) is
    no limit."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and (match := _BYTES_RE.match(value)):
        return int(match.group(1)) * _BYTE_UNITS[(match.group(2) or "").lower()]
    raise PydanticCustomError(EXPECTED, f"expected {BYTES_RULE}")


class BatchOptions(StrictModel):
    """How many events one invocation gets. A batch is handed over when it holds
    ``size`` events or ``max_bytes``, or once ``window`` has passed since its first
    event was leased; without a window, with whatever is available at once."""

    size: int = Field(ge=1, le=10000, description="an integer from 1 to 10000")
    window: Duration = Field(
        default=0,
        ge=0,
        le=MAX_WINDOW,
        description=f"{DURATION_RULE}, at most {MAX_WINDOW} seconds (how long a batch waits "
        "to fill)",
    )
    max_bytes: Annotated[int | None, BeforeValidator(_parse_bytes)] = Field(
        default=None,
        ge=1,
        le=MAX_BATCH_BYTES,
        description=f"{BYTES_RULE}, at most 6MB (the largest payload an invocation takes)",
    )

    @model_validator(mode="after")
    def _fills(self) -> BatchOptions:
        if self.size == 1 and (self.window or self.max_bytes):
            raise PydanticCustomError(
                PLAIN,
                "a batch of size 1 is full with its first event, so window and max_bytes "
                "would do nothing: raise size, or remove window and max_bytes",
            )
        return self


def _ordering(value: Any) -> Any:
    """``ordering: true`` orders by the ``partitionkey`` extension; ``false`` is off."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class OrderingOptions(StrictModel):
    """Events of the same key are handled one at a time, in publish order."""

    key: KeyPath = Field(default="partitionkey", description=KEY_PATH_RULE)


def _route_secret(value: Any) -> Any:
    """``{sealed: ...}`` (a literal secret as the store keeps it) as a ``SealedSecret``."""
    return sealed(value) if is_sealed(value) else value


class HttpOptions(StrictModel):
    """An HTTP route answered by the function with API Gateway's payload: HTTP API's 2.0
    by default, or the REST API's (v1) for code written for it."""

    route: str = Field(description='"METHOD /path/{param}", such as "POST /orders/{id}"')
    auth: Literal["none", "token", "hmac"] = Field(
        default="none", description='"none", "token" (an API token) or "hmac" (a signed body)'
    )
    secret: Annotated[str | SealedSecret | None, BeforeValidator(_route_secret)] = Field(
        default=None, description="for hmac: the secret, or env:NAME to read it from the server"
    )
    payload: Literal["v1", "v2"] = Field(
        default="v2",
        description='"v2" (API Gateway HTTP API payload 2.0) or "v1" (the REST API payload)',
    )
    cors: Annotated[CorsOptions | None, BeforeValidator(cors_option)] = Field(
        default=None,
        description="true, or a mapping of allow_origins, allow_methods, allow_headers,"
        " expose_headers, max_age, allow_credentials: pages of other origins may call the route",
    )

    @property
    def literal_secret(self) -> str | None:
        """The secret as written, when it is not env:NAME (nor sealed already)."""
        secret = self.secret
        return secret if isinstance(secret, str) and not secret.startswith("env:") else None

    @property
    def variable_name(self) -> str | None:
        """The server's environment variable this route signs with, if it names one."""
        secret = self.secret
        return secret[4:] if isinstance(secret, str) and secret.startswith("env:") else None


def route_sealed_for(trigger_id: str) -> str:
    """The associated data the sealed secret of the HTTP route of trigger
    ``trigger_id`` (``<function>.<trigger name>``) is encrypted with."""
    return f"route:{trigger_id}"


FileChange = Literal["created", "modified", "deleted"]
FILE_CHANGES: tuple[FileChange, ...] = ("created", "modified", "deleted")


class FilesOptions(StrictModel):
    """A folder watched for files created, modified or deleted."""

    path: str = Field(description="a folder on the server, relative to the manifest")
    events: list[FileChange] = Field(
        default_factory=lambda: list(FILE_CHANGES),
        description='a list of "created", "modified", "deleted"',
    )
    recursive: bool = Field(default=True, description="true to watch sub-folders too")
    glob: str | None = Field(default=None, description='a file name pattern such as "*.csv"')


class SourceOptions(BaseModel):
    """A message broker feeding the trigger; options beyond these depend on ``kind``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(
        description="redis, redis-pubsub, nats, jetstream, amqp, mqtt, postgres or outbox"
    )
    url: str = Field(description="the broker's URL; ${NAME} takes a value from the environment")


SOURCE_KEYS = ("topic", "schedule", "bucket", "http", "files", "source")


class TriggerConfig(StrictModel):
    """What feeds a function (exactly one of the source keys), which of those events it
    wants (``pattern``), and how failed deliveries are retried and dead-lettered."""

    topic: TopicName | None = Field(default=None, description=TOPIC_RULE)
    schedule: Annotated[ScheduleOptions | None, BeforeValidator(_expression)] = Field(
        default=None, description="a schedule expression, or a mapping with expression, timezone"
    )
    bucket: Annotated[BucketOptions | None, BeforeValidator(_bucket_name)] = Field(
        default=None, description="a bucket name, or a mapping with name, events, prefix, suffix"
    )
    http: HttpOptions | None = Field(default=None, description="a mapping with route and auth")
    files: FilesOptions | None = Field(default=None, description="a mapping with path and events")
    source: SourceOptions | None = Field(default=None, description="a mapping with kind and url")
    name: Name | None = Field(default=None, description=NAME_RULE)
    pattern: Annotated[dict[str, Any] | None, AfterValidator(_check_pattern)] = Field(
        default=None, description="an event pattern: a mapping such as {type: [order.created]}"
    )
    event_format: Literal["cloudevent", "aws", "eventbridge", "sqs"] | None = Field(
        default=None,
        description='"cloudevent" (the CloudEvent as JSON), "aws" (the shape AWS Lambda gets '
        'from this source), "eventbridge" or "sqs"',
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description="a mapping with max_attempts, max_age, backoff, max_backoff",
    )
    dead_letter: TopicName | None = Field(default=None, description=TOPIC_RULE)
    batch_size: int = Field(
        default=1, ge=1, le=10000, description="an integer from 1 to 10000 (short for batch.size)"
    )
    batch: BatchOptions | None = Field(
        default=None, description="a mapping with size, and optionally window and max_bytes"
    )
    ordering: Annotated[OrderingOptions | None, BeforeValidator(_ordering)] = Field(
        default=None,
        description="true (by the partitionkey extension), or a mapping with key, a key path "
        "such as data.customer",
    )
    start: Literal["latest", "earliest"] = Field(
        default="latest", description='"latest" or "earliest"'
    )
    alias: str = Field(
        default="live",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the alias of the function the trigger invokes (1 to 64 letters, digits, "
        "'-' or '_'); live by default",
    )
    # Flow control (docs/guide.md, "Flow control").
    concurrency: ConcurrencyOptions | None = Field(
        default=None, description="a mapping with limit and an optional key"
    )
    rate: RateOptions | None = Field(
        default=None, description="a mapping with limit, period and an optional key"
    )
    debounce: DebounceOptions | None = Field(
        default=None, description="a mapping with period and an optional key"
    )
    priority: Priority = Field(
        default=None, description="a key path such as data.priority, or a mapping with key, default"
    )

    @model_validator(mode="after")
    def _flow_control_fits(self) -> TriggerConfig:
        flow = [k for k in ("concurrency", "rate", "debounce", "priority") if getattr(self, k)]
        if self.http is not None and flow:
            raise PydanticCustomError(
                PLAIN,
                "an http trigger answers each request at once: remove {keys} from it (the"
                " function's max_concurrency bounds its requests)",
                {"keys": ", ".join(flow)},
            )
        if self.debounce is not None and self.batch_size > 1:
            raise PydanticCustomError(
                PLAIN,
                "debounce runs single events: remove the batch (or give it size 1), or"
                " remove debounce",
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _batch_forms(cls, data: Any) -> Any:
        """``batch_size: N`` is short for ``batch: {size: N}``; both at once is refused
        (unless they agree, as in a stored trigger). ``batch_size`` follows ``batch``."""
        if not isinstance(data, dict) or not isinstance(data.get("batch"), dict):
            return data
        size = data["batch"].get("size")
        if "batch_size" in data and data["batch_size"] not in (None, size):
            raise PydanticCustomError(
                PLAIN,
                "batch_size and batch are two ways to say the same: keep batch "
                "({size: N, window: ..., max_bytes: ...}) and remove batch_size",
            )
        return {**data, "batch_size": size} if isinstance(size, int) else data

    @model_validator(mode="after")
    def _flow_fits_source(self) -> TriggerConfig:
        if self.http is not None and (self.batch or self.batch_size > 1 or self.ordering):
            raise PydanticCustomError(
                PLAIN,
                "an http trigger answers each request at once: remove batch, batch_size "
                "and ordering from it",
            )
        window = self.batch.window if self.batch else 0
        if self.ordering is not None and window >= self.retry.max_age:
            raise PydanticCustomError(
                PLAIN,
                "ordering with batch.window {window} s and retry.max_age {age} s cannot "
                "work: a key's events would age out while their batch waits; shorten "
                "batch.window or lengthen retry.max_age",
                {"window": window, "age": self.retry.max_age},
            )
        return self

    @property
    def batching(self) -> BatchOptions:
        """The batch settings, ``batch_size: N`` read as ``batch: {size: N}``."""
        return self.batch or BatchOptions(size=self.batch_size)

    @model_validator(mode="after")
    def _one_source(self) -> TriggerConfig:
        given = [key for key in SOURCE_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                PLAIN,
                "a trigger needs exactly one of {keys}; found {found}",
                {"keys": ", ".join(SOURCE_KEYS), "found": ", ".join(given) or "none"},
            )
        return self

    @property
    def kind(self) -> str:
        """Which source feeds it: topic, schedule, bucket, http, files or a broker's kind."""
        if self.source is not None:
            return self.source.kind
        return next(key for key in SOURCE_KEYS if getattr(self, key) is not None)

    @property
    def trigger_name(self) -> str:
        """The trigger's name: ``name`` when given, else its topic or its kind of source."""
        if self.name is not None:
            return self.name
        if self.topic is not None:
            return self.topic
        if self.bucket is not None:
            return f"bucket-{self.bucket.name}"
        return self.kind

    def group_id(self, function: str) -> str:
        """The consumer group of this trigger; stable across redeploys of ``function``."""
        return f"{function}.{self.trigger_name}"

    def bus_topic(self, function: str) -> str:
        """The topic the trigger consumes: its own ``topic``, or the internal topic its
        source publishes to (``_bucket.<name>`` is shared by every trigger on a bucket).
        HTTP routes are answered without the bus; theirs is only a label."""
        if self.topic is not None:
            return self.topic
        if self.bucket is not None:
            return bucket_topic(self.bucket.name)
        return f"_{'source' if self.source is not None else self.kind}.{self.group_id(function)}"


def bucket_topic(bucket: str) -> str:
    """The internal topic where the object store publishes the changes of ``bucket``."""
    return f"_bucket.{bucket}"
