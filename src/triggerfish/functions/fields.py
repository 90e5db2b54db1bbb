"""Field types and rules shared by the manifest's models.

Validators raise ``PydanticCustomError`` of two kinds that the manifest loader turns into
messages: ``EXPECTED`` ("expected ...", the loader appends what it got) and ``PLAIN`` (a
whole sentence).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from triggerfish.bus.names import TOPIC_PATTERN, TOPIC_RULE

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HANDLER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_RUNTIME_RE = re.compile(r"^(python(3\.\d{1,2})?|nodejs(\d{2}\.x)?|provided(\.al2|\.al2023)?)$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# A custom error of this type is "expected ...": the loader appends what it got.
EXPECTED = "triggerfish_expected"
# A custom error of this type is a whole sentence, printed as it is.
PLAIN = "triggerfish"

NAME_RULE = "a name of 1 to 64 characters: lowercase letters, digits, '-' or '_', not starting with '-' or '_'"  # noqa: E501
DURATION_RULE = 'a duration: seconds as an integer, or a number with s, m, h or d ("30s", "7d")'


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise PydanticCustomError(EXPECTED, f"expected {NAME_RULE}")
    return value


def _check_topic(value: str) -> str:
    if not TOPIC_PATTERN.match(value):
        raise PydanticCustomError(EXPECTED, f"expected {TOPIC_RULE}")
    return value


def _check_handler(value: str) -> str:
    if not _HANDLER_RE.match(value):
        raise PydanticCustomError(
            EXPECTED, 'expected "module.function" (e.g. "main.handler"; the module may be dotted)'
        )
    return value


def _check_runtime(value: str) -> str:
    if not _RUNTIME_RE.match(value):
        raise PydanticCustomError(
            EXPECTED,
            'expected "python" or "python3.X" (e.g. "python3.11"), "nodejs" or "nodejsNN.x"'
            ' (e.g. "nodejs20.x", "nodejs22.x"), or "provided", "provided.al2" or'
            ' "provided.al2023"',
        )
    return value


def _check_layer(value: str) -> str:
    if not value.strip() or "\x00" in value:
        raise PydanticCustomError(
            EXPECTED, "expected a layer: a folder name in layers/ or a path to a folder"
        )
    return value


def _parse_duration(value: Any) -> Any:
    """Turn ``30``, ``"30s"``, ``"5m"``, ``"2h"`` or ``"7d"`` into whole seconds."""
    if isinstance(value, bool):
        raise PydanticCustomError(EXPECTED, f"expected {DURATION_RULE}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and (match := _DURATION_RE.match(value)):
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise PydanticCustomError(EXPECTED, f"expected {DURATION_RULE}")


def _env_value(value: Any) -> Any:
    """Environment values are strings; YAML scalars (numbers, booleans) are turned into them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    raise PydanticCustomError(EXPECTED, "expected a string (or a number or boolean)")


def _check_env_key(value: str) -> str:
    if not _ENV_KEY_RE.match(value):
        raise PydanticCustomError(
            EXPECTED,
            "expected a variable name: letters, digits and '_', not starting with a digit",
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]
TopicName = Annotated[str, AfterValidator(_check_topic)]
Duration = Annotated[int, BeforeValidator(_parse_duration)]
EnvKey = Annotated[str, AfterValidator(_check_env_key)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
HandlerName = Annotated[str, AfterValidator(_check_handler)]
RuntimeName = Annotated[str, AfterValidator(_check_runtime)]
LayerName = Annotated[str, AfterValidator(_check_layer)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
