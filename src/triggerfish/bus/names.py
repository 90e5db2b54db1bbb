"""Rules for topic names, shared by the API, the manifest and the dispatcher."""

from __future__ import annotations

import re

from triggerfish.errors import ValidationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_topic_name(name: str) -> str:
    """Topic names people choose: letters, digits, '.', '_', '-'; a leading '_' is
    reserved for Triggerfish's own topics."""
    if not _NAME.match(name):
        raise ValidationError(
            f"invalid topic name {name!r}: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="topic",
        )
    return name
