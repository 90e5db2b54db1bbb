"""The no-op function of the core benchmark: it does nothing and says so."""

from typing import Any


def handler(event: Any, context: Any) -> dict[str, bool]:
    return {"ok": True}
