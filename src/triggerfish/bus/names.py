"""Rules for topic names people choose, shared by the API and the manifest.

The bus itself accepts any short name, because Triggerfish's own topics start with
'_' (``_invoke.<function>``, ``_redrive.<trigger>``).
"""

from __future__ import annotations

import re

from triggerfish.errors import ValidationError

TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TOPIC_RULE = "a topic name of 1 to 128 characters: letters, digits, '.', '-' or '_'"


def check_topic_name(name: str) -> str:
    if not TOPIC_PATTERN.match(name):
        raise ValidationError(
            f"invalid topic name {name!r}: expected {TOPIC_RULE}, starting with a letter or "
            "digit (a leading '_' is kept for Triggerfish's own topics)",
            field="topic",
        )
    return name
