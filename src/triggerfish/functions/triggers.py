"""Triggers in the manifest: what feeds a function, how its events are filtered, and
how failed deliveries are retried and dead-lettered."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_RULE
from triggerfish.errors import PatternError
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


def _route_secret(value: Any) -> Any:
    """``{sealed: ...}`` (a literal secret as the store keeps it) as a ``SealedSecret``."""
    return sealed(value) if is_sealed(value) else value


class HttpOptions(StrictModel):
    """An HTTP route answered by the function (API Gateway HTTP API payload 2.0)."""

    route: str = Field(description='"METHOD /path/{param}", such as "POST /orders/{id}"')
    auth: Literal["none", "token", "hmac"] = Field(
        default="none", description='"none", "token" (an API token) or "hmac" (a signed body)'
    )
    secret: Annotated[str | SealedSecret | None, BeforeValidator(_route_secret)] = Field(
        default=None, description="for hmac: the secret, or env:NAME to read it from the server"
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
    batch_size: int = Field(default=1, ge=1, le=10000, description="an integer from 1 to 10000")
    start: Literal["latest", "earliest"] = Field(
        default="latest", description='"latest" or "earliest"'
    )
    alias: str = Field(
        default="live",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the alias of the function the trigger invokes (1 to 64 letters, digits, "
        "'-' or '_'); live by default",
    )

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
