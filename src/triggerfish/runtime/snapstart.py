"""Hooks around the snapshot of a ``snapstart: true`` function, for the function's code.

A snapstart function's module is imported once per version, in a template process;
every execution environment is then a fork of that template (see docs/execution.md).
What the module opened during its import is therefore shared by, or missing from, the
environments: connections and sockets are shared, threads do not exist in the forks,
and seeds or unique values drawn at import are the same in every environment. The
hooks let the module put such things right:

    from triggerfish.runtime import snapstart

    @snapstart.register_before_snapshot
    def close_pool() -> None:  # runs once, in the template, after the import
        pool.close()

    @snapstart.register_after_restore
    def reopen_pool() -> None:  # runs in each environment, before its first invocation
        pool.open()

Before-snapshot hooks run in the order they were registered, after-restore hooks in
the reverse order (as Lambda's SnapStart runtime hooks do). A hook that raises fails
the init: before a snapshot, the template is discarded and the invocation reports the
error; after a restore, that environment is. In environments that are not forked from
a snapshot the hooks never run, so the same code works with and without snapstart.

The registry is module state on purpose: it lives inside one execution environment,
which is one process serving one function version. Imported by function code, this
module imports nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Hook = TypeVar("Hook", bound=Callable[..., Any])

_before: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
_after: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []


def register_before_snapshot(hook: Hook, *args: Any, **kwargs: Any) -> Hook:
    """Run ``hook(*args, **kwargs)`` in the template once the module is imported, before
    environments are forked from it. Usable as a decorator; returns ``hook``."""
    _before.append((hook, args, kwargs))
    return hook


def register_after_restore(hook: Hook, *args: Any, **kwargs: Any) -> Hook:
    """Run ``hook(*args, **kwargs)`` in each environment forked from the template, before
    its first invocation. Usable as a decorator; returns ``hook``."""
    _after.append((hook, args, kwargs))
    return hook


def run_before_snapshot() -> None:
    """Used by the runtime: the before-snapshot hooks, first registered first."""
    for hook, args, kwargs in list(_before):
        hook(*args, **kwargs)


def run_after_restore() -> None:
    """Used by the runtime: the after-restore hooks, last registered first."""
    for hook, args, kwargs in reversed(list(_after)):
        hook(*args, **kwargs)
