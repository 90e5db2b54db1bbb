"""What a credential may do: permissions, each an action on a resource pattern.

A permission is written ``action`` or ``action:resource`` (``publish:orders``,
``s3:read:photos/in/*``, ``invoke:resize:live``); a missing resource is ``*``. Both API
tokens and access keys carry a tuple of them (a ``Policy``), and every API checks one
with ``Principal.require(action, resource)``, which raises ``PermissionDeniedError``
naming the permission that is missing. This module is pure: no I/O.

Actions, and what their resource names:

- ``admin`` (no resource): everything, tokens and keys included.
- ``read`` (no resource): the reads of ``/v1`` (functions, topics, invocations ...).
- ``deploy`` on a function: deploys, deletes, aliases, the Lambda API's control
  operations; ``deploy`` on ``*`` also topics, webhooks, brokers, replays, redrives.
- ``invoke`` on ``function`` or ``function:qualifier``: calls (an unqualified call is
  one of ``live``).
- ``publish`` on a topic: event ingest.
- ``s3:read`` on ``bucket`` or ``bucket/key``: GetObject, HeadObject, the listings the
  pattern covers.
- ``s3:write`` on ``bucket`` or ``bucket/key``: PutObject, DeleteObject, copies and
  multipart uploads into it; on a whole bucket also CreateBucket and DeleteBucket.

Patterns: ``*`` matches any run of characters (``/`` and ``:`` included); there is no
other wildcard. A bucket pattern without ``/`` covers the bucket and every key in it;
``photos/in/*`` covers keys under ``in/`` of ``photos`` but not the bucket itself. A
listing is allowed when the pattern covers every key it could show: ``photos`` or
``photos/in/*`` for the prefix ``in/2024/``, not ``photos/*.jpg``. A topic pattern that
does not start with ``_`` never matches Triggerfish's own topics (``_invoke.resize``,
``_bucket.photos``), so ``publish:*`` cannot start a function or fake an upload.
A request for the resource ``*`` (a change that names no function) is covered only by
the pattern ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from triggerfish.errors import PermissionDeniedError, ValidationError

ADMIN = "admin"
READ = "read"
DEPLOY = "deploy"
INVOKE = "invoke"
PUBLISH = "publish"
S3_READ = "s3:read"
S3_WRITE = "s3:write"
ACTIONS = (ADMIN, READ, DEPLOY, INVOKE, PUBLISH, S3_READ, S3_WRITE)
S3_ACTIONS = (S3_READ, S3_WRITE)
ANY = "*"

# Longest first, so that ``s3:read:x`` is read as ``s3:read`` on ``x``.
_BY_LENGTH = sorted(ACTIONS, key=len, reverse=True)
_TOPIC = re.compile(r"^[A-Za-z0-9._*-]{1,128}$")
_FUNCTION = re.compile(r"^[a-z0-9_*-]{1,64}$")
_QUALIFIER = re.compile(r"^[A-Za-z0-9$._*-]{1,128}$")
_BUCKET = re.compile(r"^[a-z0-9.*-]{1,63}$")
_KEY = re.compile(r"^[^\x00-\x1f\x7f]{1,1024}$")

#: The resource flags of the CLI and the API, by the actions that take them.
RESOURCE_KINDS = {PUBLISH: "topics", INVOKE: "functions", DEPLOY: "functions"}
RESOURCE_KINDS |= {S3_READ: "buckets", S3_WRITE: "buckets"}

Matcher = Callable[[str], bool]


def _everything(_text: str) -> bool:
    return True


def glob(pattern: str) -> Matcher:
    """A test of whole strings against ``pattern``, where ``*`` matches any run."""
    if pattern == ANY:
        return _everything
    if "*" not in pattern:
        return pattern.__eq__
    regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None


def _bad(text: str, why: str) -> ValidationError:
    return ValidationError(f"permission {text!r}: {why}", field="scopes")


@dataclass(frozen=True, slots=True)
class Permission:
    """``action`` on the resources ``resource`` matches (see the module docstring)."""

    action: str
    resource: str = ANY
    _first: Matcher = field(init=False, repr=False, compare=False)
    _second: Matcher | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first, second = self.resource, None
        if self.action == INVOKE:
            first, _, second = self.resource.partition(":")
            second = second or ANY
        elif self.action in S3_ACTIONS and "/" in self.resource:
            first, _, second = self.resource.partition("/")
        object.__setattr__(self, "_first", glob(first))
        object.__setattr__(self, "_second", None if second is None else glob(second))

    @classmethod
    def parse(cls, text: str) -> Permission:
        """``action`` or ``action:resource``; ValidationError saying what is wrong."""
        text = text.strip()
        for action in _BY_LENGTH:
            if text == action:
                return cls(action)
            if text.startswith(action + ":"):
                return cls.of(action, text[len(action) + 1 :], text=text)
        raise _bad(text, f"unknown action; choose from {', '.join(ACTIONS)}")

    @classmethod
    def of(cls, action: str, resource: str, *, text: str | None = None) -> Permission:
        """``action`` on ``resource``, both checked."""
        text = text or f"{action}:{resource}"
        if action not in ACTIONS:
            raise _bad(text, f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
        if resource == ANY:
            return cls(action)
        if action in (ADMIN, READ):
            raise _bad(text, f"{action!r} applies to everything and takes no resource")
        if action == PUBLISH and not _TOPIC.match(resource):
            raise _bad(text, "expected a topic name or pattern (letters, digits, . _ - and *)")
        if action == DEPLOY and not _FUNCTION.match(resource):
            raise _bad(text, "expected a function name or pattern (a-z, 0-9, _ - and *)")
        if action == INVOKE:
            function, colon, qualifier = resource.partition(":")
            if not _FUNCTION.match(function) or (colon and not _QUALIFIER.match(qualifier)):
                raise _bad(
                    text,
                    "expected a function name or pattern, optionally ':' and a qualifier "
                    "(an alias, a version number or id, $LATEST)",
                )
        if action in S3_ACTIONS:
            bucket, slash, key = resource.partition("/")
            if not _BUCKET.match(bucket) or (slash and not _KEY.match(key)):
                raise _bad(
                    text, "expected a bucket name or pattern, optionally '/' and a key pattern"
                )
        return cls(action, resource)

    def __str__(self) -> str:
        return self.action if self.resource == ANY else f"{self.action}:{self.resource}"

    def covers(self, action: str, resource: str = ANY) -> bool:
        """True when this permission allows ``action`` on ``resource``."""
        if self.action == ADMIN:
            return True
        if self.action != action:
            return False
        if resource == ANY:
            return self.resource == ANY
        if action == PUBLISH and resource.startswith("_") and not self.resource.startswith("_"):
            return False
        if self.resource == ANY:
            return True
        if self._second is None:
            if action in S3_ACTIONS:
                return self._first(resource.partition("/")[0])
            return self._first(resource)
        first, _, second = resource.partition(":" if action == INVOKE else "/")
        if action == INVOKE:
            second = second or "live"
        elif not second:
            return False  # a key pattern never covers the bucket itself
        return self._first(first) and self._second(second)

    def covers_listing(self, action: str, bucket: str, prefix: str) -> bool:
        """True when this permission covers every key of ``bucket`` under ``prefix``."""
        if self.action == ADMIN:
            return True
        if self.action != action or not self._first(bucket):
            return False
        if self._second is None:
            return True
        _, _, keys = self.resource.partition("/")
        literal = keys.split("*", 1)[0]
        return keys == literal + "*" and prefix.startswith(literal)

    def touches_bucket(self, bucket: str) -> bool:
        """True when this permission grants something in ``bucket``."""
        if self.action == ADMIN:
            return True
        return self.action in S3_ACTIONS and self._first(bucket)


class Policy:
    """The permissions of one credential."""

    __slots__ = ("_admin", "actions", "permissions")

    def __init__(self, permissions: Iterable[Permission]) -> None:
        self.permissions = tuple(dict.fromkeys(permissions))
        self.actions = frozenset(p.action for p in self.permissions)
        self._admin = ADMIN in self.actions

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Policy:
        return cls(Permission.parse(text) for text in texts)

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(str(permission) for permission in self.permissions)

    def allows(self, action: str, resource: str = ANY) -> bool:
        if self._admin:
            return True
        return any(p.covers(action, resource) for p in self.permissions)

    def grants_any(self, action: str) -> bool:
        """True when this policy allows ``action`` on at least some resource."""
        return self._admin or action in self.actions

    def allows_listing(self, action: str, bucket: str, prefix: str) -> bool:
        if self._admin:
            return True
        return any(p.covers_listing(action, bucket, prefix) for p in self.permissions)

    def touches_bucket(self, bucket: str) -> bool:
        if self._admin:
            return True
        return any(p.touches_bucket(bucket) for p in self.permissions)

    def held(self, action: str) -> list[str]:
        """The resource patterns this policy holds ``action`` on."""
        return [p.resource for p in self.permissions if p.action == action]

    def __repr__(self) -> str:
        return f"Policy({', '.join(self.texts) or 'nothing'})"


def describe(action: str, resource: str) -> str:
    """``resource`` as a person names it, for messages."""
    if resource == ANY:
        return "everything"
    if action == PUBLISH:
        return f"topic {resource!r}"
    if action == INVOKE:
        function, _, qualifier = resource.partition(":")
        return f"function {function!r} (qualifier {qualifier or 'live'})"
    if action == DEPLOY:
        return f"function {resource!r}"
    if action in S3_ACTIONS:
        return f"object {resource!r}" if "/" in resource else f"bucket {resource!r}"
    return repr(resource)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: an API token or an access key, with its policy."""

    kind: str  # "token" or "key"
    id: str
    name: str
    policy: Policy
    expires_at: float | None = None
    function: str | None = None  # the function whose own key this is

    @property
    def label(self) -> str:
        if self.kind == "token":
            return f"API token {self.name!r}"
        if self.function is not None:
            return f"the access key of function {self.function!r} ({self.id})"
        return f"access key {self.id} ({self.name!r})" if self.name else f"access key {self.id}"

    def allows(self, action: str, resource: str = ANY) -> bool:
        return self.policy.allows(action, resource)

    def require(self, action: str, resource: str = ANY) -> None:
        """Raise ``PermissionDeniedError`` naming the missing permission, unless allowed."""
        if not self.policy.allows(action, resource):
            raise PermissionDeniedError(self.denial(action, resource))

    def denial(self, action: str, resource: str = ANY) -> str:
        held = self.policy.held(action)
        if not held:
            scopes = ", ".join(self.policy.texts) or "none"
            message = f"{self.label} lacks the {action!r} scope (it has: {scopes})"
        else:
            patterns = ", ".join(held)
            message = (
                f"{self.label} lacks {action!r} on {describe(action, resource)}: "
                f"its {action!r} permission covers only {patterns}"
            )
        return f"{message}; {self._hint(action, resource)}"

    def _hint(self, action: str, resource: str) -> str:
        wanted = action if resource == ANY else f"{action}:{resource}"
        if self.function is not None:
            return f"grant it under 'permissions:' in the manifest of {self.function!r}"
        if self.kind == "token":
            return f"use a token issued with {wanted!r} or the {ADMIN!r} scope"
        return f"use an access key created with {wanted!r} or the {ADMIN!r} scope"


def with_resources(
    scopes: Sequence[str],
    *,
    topics: Sequence[str] = (),
    functions: Sequence[str] = (),
    buckets: Sequence[str] = (),
) -> list[Permission]:
    """Permissions from scopes and resource lists, as the CLI and the API take them:
    each scope without a resource of its own gets every resource of its kind given
    (``--scope publish --topic orders`` is ``publish:orders``), or ``*`` when none is.
    A resource list that no scope takes is refused rather than ignored."""
    given = {"topics": list(topics), "functions": list(functions), "buckets": list(buckets)}
    used: set[str] = set()
    out: list[Permission] = []
    for text in scopes:
        permission = Permission.parse(text)
        kind = RESOURCE_KINDS.get(permission.action)
        if permission.resource != ANY or kind is None or not given[kind]:
            out.append(permission)
            continue
        used.add(kind)
        out.extend(Permission.of(permission.action, name) for name in given[kind])
    for kind, names in given.items():
        if names and kind not in used:
            takers = ", ".join(a for a, k in RESOURCE_KINDS.items() if k == kind)
            raise ValidationError(
                f"{kind} were given ({', '.join(names)}) but no scope takes them: "
                f"add a scope among {takers}",
                field=kind,
            )
    if not out:
        raise ValidationError(
            f"at least one scope is needed; choose from {', '.join(ACTIONS)}", field="scopes"
        )
    return out
