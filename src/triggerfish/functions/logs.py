"""``logging:`` of a function in the manifest: the format and levels of its logs, as
Lambda's ``LoggingConfig`` has them (``LogFormat``, ``ApplicationLogLevel``,
``SystemLogLevel``).

The settings reach the function as Lambda passes them, in its environment:
``AWS_LAMBDA_LOG_FORMAT`` (``JSON``), ``AWS_LAMBDA_LOG_LEVEL``, and
``TRIGGERFISH_SYSTEM_LOG_LEVEL`` for the platform's own records
(``runtime/report.py``). As on Lambda, levels apply to the JSON format only, whose
default levels are INFO.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from triggerfish.functions.fields import StrictModel

ApplicationLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
SystemLevel = Literal["DEBUG", "INFO", "WARN"]


class LogsConfig(StrictModel):
    format: Literal["text", "json"] = Field(default="text", description='"text" or "json"')
    level: ApplicationLevel | None = Field(
        default=None, description="the function's least level: TRACE ... FATAL (json only)"
    )
    system_level: SystemLevel | None = Field(
        default=None, description="the platform records' least level: DEBUG, INFO, WARN"
    )

    @field_validator("format", "level", "system_level", mode="before")
    @classmethod
    def _case(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name == "format" else value.upper()

    def environment(self) -> dict[str, str]:
        """What the function's environment gets; nothing for plain text."""
        if self.format != "json":
            return {}
        return {
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_LEVEL": self.level or "INFO",
            "TRIGGERFISH_SYSTEM_LOG_LEVEL": self.system_level or "INFO",
        }
