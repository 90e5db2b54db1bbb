"""``idempotent`` and ``idempotent_function``: claim the key, run or reuse, keep the
result or release the claim (the rules are in the package's docstring)."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from triggerfish.context import current_context
from triggerfish.errors import ValidationError
from triggerfish.idempotency.errors import IdempotencyError, IdempotencyInProgress
from triggerfish.idempotency.keys import KeySpec, key_of_arguments, key_of_event, scoped
from triggerfish.idempotency.records import Claim, HttpRecords, Records

log = logging.getLogger("triggerfish")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_EXPIRES = 3600.0
MAX_EXPIRES = 366 * 24 * 3600.0
#: Added to the rest of the invocation to make a claim's lease: a claim outlives the
#: invocation that holds it a little, never the environment that died with it by much.
LEASE_MARGIN = 5.0
#: The lease and the wait of a claim made where no invocation sets a deadline.
UNBOUNDED_LEASE = 900.0
UNBOUNDED_WAIT = 60.0
#: The longest lease the node grants.
MAX_LEASE = 3600.0


class _Once:
    """One guarded call: claim, wait while another holds the key, then run or reuse."""

    def __init__(
        self, records: Records, key: str, *, expires: float, wait: float | None, context: Any
    ) -> None:
        self.records = records
        self.key = key
        self.expires = expires
        remaining = None if context is None else context.get_remaining_time_in_millis() / 1000
        if remaining is None or remaining >= 2**31 / 1000 - 1:
            self.lease = UNBOUNDED_LEASE
            default_wait = UNBOUNDED_WAIT
        else:
            self.lease = min(MAX_LEASE, max(1.0, remaining + LEASE_MARGIN))
            default_wait = max(0.0, remaining - 1.0)
        self.deadline = time.monotonic() + (default_wait if wait is None else wait)
        self.pause = 0.05

    def next_pause(self, claim: Claim) -> float | None:
        """None once ``claim`` settles the call; else how long to wait before claiming
        again (``IdempotencyInProgress`` when the wait is over)."""
        if claim.status != "in_progress":
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise IdempotencyInProgress(self.key, retry_after=claim.expires_in)
        # At the end of the other's lease the next claim takes the key over.
        pause = min(self.pause, left, max(claim.expires_in, 0.01))
        self.pause = min(self.pause * 2, 1.0)
        return pause

    def result_text(self, token: str, result: Any) -> str:
        try:
            return json.dumps(result, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            self.release(token)
            raise ValidationError(
                f"an idempotent handler must return JSON (its result is kept as JSON): {exc}",
                field="result",
            ) from None

    def complete(self, token: str, text: str) -> None:
        try:
            kept = self.records.complete(self.key, token, text, self.expires)
        except IdempotencyError as exc:
            log.warning("the result of idempotency key %r was not kept: %s", self.key, exc)
            self.release(token)
            return
        if not kept:
            log.warning(
                "the claim of idempotency key %r ended before its handler returned (its lease "
                "ran out and another delivery took it over): its result was not kept",
                self.key,
            )

    def release(self, token: str) -> None:
        try:
            self.records.release(self.key, token)
        except IdempotencyError as exc:  # the claim ends with its lease instead
            log.warning("the claim of idempotency key %r was not released: %s", self.key, exc)

    def run(self, call: Callable[[], Any]) -> Any:
        while True:
            claim = self.records.claim(self.key, self.lease)
            pause = self.next_pause(claim)
            if pause is None:
                break
            time.sleep(pause)
        if claim.status == "completed":
            return claim.result
        token = cast(str, claim.token)
        try:
            result = call()
        except BaseException:
            self.release(token)
            raise
        self.complete(token, self.result_text(token, result))
        return result

    async def run_async(self, call: Callable[[], Any]) -> Any:
        import asyncio

        while True:
            claim = await asyncio.to_thread(self.records.claim, self.key, self.lease)
            pause = self.next_pause(claim)
            if pause is None:
                break
            await asyncio.sleep(pause)
        if claim.status == "completed":
            return claim.result
        token = cast(str, claim.token)
        try:
            result = await call()
        except BaseException:
            await asyncio.to_thread(self.release, token)
            raise
        text = self.result_text(token, result)
        await asyncio.to_thread(self.complete, token, text)
        return result


def _check(expires: float, wait: float | None) -> None:
    if not isinstance(expires, int | float) or not 0 < expires <= MAX_EXPIRES:
        raise ValidationError(
            f"expires must be seconds above 0 and at most a year, not {expires!r}",
            field="expires",
        )
    if wait is not None and (not isinstance(wait, int | float) or wait < 0):
        raise ValidationError(f"wait must be seconds, 0 or more, not {wait!r}", field="wait")


def _handler_context(*args: Any, **_kwargs: Any) -> Any:
    """The context a handler was given (a test may give one of its own), or the
    context of the invocation running here."""
    if len(args) > 1 and hasattr(args[1], "get_remaining_time_in_millis"):
        return args[1]
    return current_context()


def _running_context(*_args: Any, **_kwargs: Any) -> Any:
    return current_context()


def _guard(
    fn: Callable[..., Any],
    key_of: Callable[..., str],
    context_of: Callable[..., Any],
    *,
    expires: float,
    wait: float | None,
    records: Records | None,
) -> Callable[..., Any]:
    scope = str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "function"))
    resolved: list[Records] = [records] if records is not None else []

    def once(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Once:
        if not resolved:  # on the first call: importing a handler needs no environment
            resolved.append(HttpRecords.from_environment())
        key = scoped(scope, key_of(*args, **kwargs))
        context = context_of(*args, **kwargs)
        return _Once(resolved[0], key, expires=expires, wait=wait, context=context)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            return await once(args, kwargs).run_async(lambda: fn(*args, **kwargs))

        return guarded_async

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        return once(args, kwargs).run(lambda: fn(*args, **kwargs))

    return guarded


@overload
def idempotent(fn: F, /) -> F: ...


@overload
def idempotent(
    *,
    key: KeySpec = None,
    expires: float = DEFAULT_EXPIRES,
    wait: float | None = None,
    records: Records | None = None,
) -> Callable[[F], F]: ...


def idempotent(
    fn: F | None = None,
    /,
    *,
    key: KeySpec = None,
    expires: float = DEFAULT_EXPIRES,
    wait: float | None = None,
    records: Records | None = None,
) -> F | Callable[[F], F]:
    """Make a handler ``(event, context)`` run once per key (``triggerfish.idempotency``
    says how).

    ``key``: a dotted path into the event (``"data.order_id"``), a function of the
    event, or None for the CloudEvent's source and id (a digest of any other payload).
    ``expires``: seconds a result is kept. ``wait``: seconds to wait for a delivery of
    the same key in progress (default: the rest of the invocation, less a second).
    ``records``: where records are kept (default: the node, through the environment).
    """
    _check(expires, wait)
    key_of = key_of_event(key)

    def decorate(handler: F) -> F:
        guarded = _guard(
            handler, key_of, _handler_context, expires=expires, wait=wait, records=records
        )
        return cast(F, guarded)

    return decorate(fn) if fn is not None else decorate


@overload
def idempotent_function(fn: F, /) -> F: ...


@overload
def idempotent_function(
    *,
    key: KeySpec = None,
    expires: float = DEFAULT_EXPIRES,
    wait: float | None = None,
    records: Records | None = None,
) -> Callable[[F], F]: ...


def idempotent_function(
    fn: F | None = None,
    /,
    *,
    key: KeySpec = None,
    expires: float = DEFAULT_EXPIRES,
    wait: float | None = None,
    records: Records | None = None,
) -> F | Callable[[F], F]:
    """``@idempotent`` for any function a handler calls (a payment, an email), keyed
    by its arguments: ``key`` is a dotted path into the first argument, a function
    taking the same arguments, or None for a digest of all of them (they must be
    JSON). Its result must be JSON as well."""
    _check(expires, wait)
    key_of = key_of_arguments(key)

    def decorate(function: F) -> F:
        guarded = _guard(
            function, key_of, _running_context, expires=expires, wait=wait, records=records
        )
        return cast(F, guarded)

    return decorate(fn) if fn is not None else decorate
