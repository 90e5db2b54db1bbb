"""How deeply a JSON text nests, checked before anything parses it.

The parsers recurse once per level (msgspec up to Python's recursion limit, orjson up
to 1,024 levels when reading and 254 when writing), so a document nested a thousand
levels deep fails far from where it came in: a 500 at ingest, or an event that is
stored and then cannot be delivered. ``check_depth`` refuses such a text at the door
with a message the sender can act on.

``deeper_than`` looks at bytes only, without parsing: the brackets, with the ones
inside strings left out. It costs a ``bytes.translate`` for a text with no more
brackets than the limit (almost every event), and is linear in the number of
brackets otherwise. It counts the brackets of invalid JSON too (the parser says what
else is wrong), so it never lets through a text that nests too deeply.
"""

from __future__ import annotations

from array import array
from itertools import accumulate

from triggerfish.errors import EventValidationError, ValidationError

#: Default for ``Settings.json_depth_limit``: levels of nesting of event data and payloads.
MAX_DEPTH = 64

# ``[`` and ``{`` become +1, ``]`` and ``}`` -1 (as a signed byte); everything else goes.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _deepest(steps: bytes) -> int:
    """The highest running sum of the +1 / -1 steps: the deepest nesting."""
    return max(accumulate(array("b", steps)), default=0)


def _without_strings(text: bytes) -> bytes:
    """``text`` with the contents of its JSON strings left out."""
    if b"\\" in text:
        # An escape pair from the left: ``\\`` first, so that ``\\"`` ends a string.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(text.split(b'"')[::2])


def deeper_than(text: bytes, limit: int) -> bool:
    """True when the JSON ``text`` nests arrays and objects more than ``limit`` deep."""
    steps = text.translate(_STEPS, _NOT_BRACKETS)
    if len(steps) <= limit or _deepest(steps) <= limit:
        return False
    if b'"' not in text:
        return True
    # The brackets counted may be inside strings: count again without them.
    return _deepest(_without_strings(text).translate(_STEPS, _NOT_BRACKETS)) > limit


def depth_problem(limit: int, what: str) -> str:
    return (
        f"{what} is nested more than {limit} levels deep (the json_depth_limit); "
        "flatten it, or send deeply nested documents as a string"
    )


def check_depth(
    text: bytes, limit: int, *, what: str = "the event data", levels_above: int = 0
) -> None:
    """Raise ``EventValidationError`` (field ``data``) when ``text`` nests more than
    ``limit`` levels below its ``levels_above`` levels of envelope (1 for a structured
    event, 2 for a batch)."""
    if deeper_than(text, limit + levels_above):
        raise EventValidationError(depth_problem(limit, what), field="data")


def check_payload_depth(payload: bytes, limit: int) -> None:
    """Raise ``ValidationError`` (field ``payload``) for an invocation payload that nests
    more than ``limit`` levels deep."""
    if deeper_than(payload, limit):
        raise ValidationError(depth_problem(limit, "the invocation payload"), field="payload")
