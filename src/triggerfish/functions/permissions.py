"""A function's ``permissions:`` in the manifest: what its own access key may do.

```yaml
permissions:
  buckets:
    read: [photos, "uploads/in/*"]   # a whole bucket, or bucket/key patterns
    write: ["thumbs/*"]
  publish: [orders]                  # topics (ingest signed with the key)
  invoke: [resize, "resize:live"]    # functions, optionally with a qualifier
  deploy: [resize]                   # aliases and the Lambda API's control operations
```

Nothing is granted by default, with one exception: a bucket trigger lets the function
read what it is told about (``s3:read`` on ``<bucket>/<prefix>*<suffix>``). ``*`` is the
only wildcard (see ``security.permissions``). Each entry is checked when the manifest
is read, and a bad one is named by its key path
(``functions.thumbs.permissions.buckets.write[0]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from triggerfish.errors import ValidationError
from triggerfish.functions.fields import EXPECTED, StrictModel
from triggerfish.security.permissions import (
    DEPLOY,
    INVOKE,
    PUBLISH,
    S3_READ,
    S3_WRITE,
    Permission,
)

if TYPE_CHECKING:
    from triggerfish.functions.manifest import FunctionConfig

_RULES = {
    S3_READ: "a bucket name or a pattern such as photos/in/* ('*' is the only wildcard)",
    S3_WRITE: "a bucket name or a pattern such as thumbs/* ('*' is the only wildcard)",
    PUBLISH: "a topic name or pattern ('*' is the only wildcard)",
    INVOKE: "a function name or pattern, optionally ':' and a qualifier, such as resize:live",
    DEPLOY: "a function name or pattern",
}


def _checker(action: str) -> AfterValidator:
    def check(value: str) -> str:
        if value.strip() != value or not value:
            raise PydanticCustomError(EXPECTED, f"expected {_RULES[action]}")
        try:
            Permission.of(action, value)
        except ValidationError:
            raise PydanticCustomError(EXPECTED, f"expected {_RULES[action]}") from None
        return value

    return AfterValidator(check)


ReadPattern = Annotated[str, _checker(S3_READ)]
WritePattern = Annotated[str, _checker(S3_WRITE)]
TopicPattern = Annotated[str, _checker(PUBLISH)]
InvokePattern = Annotated[str, _checker(INVOKE)]
DeployPattern = Annotated[str, _checker(DEPLOY)]


class BucketGrants(StrictModel):
    read: list[ReadPattern] = Field(
        default_factory=list, description="a list of buckets or bucket/key patterns to read"
    )
    write: list[WritePattern] = Field(
        default_factory=list, description="a list of buckets or bucket/key patterns to write"
    )


class PermissionsConfig(StrictModel):
    """What the function's own access key may do; nothing unless listed."""

    buckets: BucketGrants = Field(
        default_factory=BucketGrants, description="a mapping with read and write lists"
    )
    publish: list[TopicPattern] = Field(
        default_factory=list, description="a list of topics the function may publish to"
    )
    invoke: list[InvokePattern] = Field(
        default_factory=list,
        description="a list of functions (name or name:qualifier) the function may invoke",
    )
    deploy: list[DeployPattern] = Field(
        default_factory=list,
        description="a list of functions whose aliases and configuration it may change",
    )

    def grants(self) -> list[Permission]:
        pairs = [(S3_READ, r) for r in self.buckets.read]
        pairs += [(S3_WRITE, r) for r in self.buckets.write]
        pairs += [(PUBLISH, r) for r in self.publish]
        pairs += [(INVOKE, r) for r in self.invoke]
        pairs += [(DEPLOY, r) for r in self.deploy]
        return [Permission.of(action, resource) for action, resource in pairs]


def granted(config: FunctionConfig) -> list[Permission]:
    """Everything the function's key may do: its ``permissions:``, and reading the
    objects its bucket triggers tell it about."""
    out = config.permissions.grants()
    for trigger in config.triggers:
        bucket = trigger.bucket
        if bucket is None:
            continue
        keys = f"{bucket.prefix}*{bucket.suffix}" if bucket.prefix or bucket.suffix else ""
        out.append(Permission(S3_READ, f"{bucket.name}/{keys}" if keys else bucket.name))
    return list(dict.fromkeys(out))
