"""The numbers a request may carry, bounded by what the store, the bus and the clock
can hold: one out of bounds is a 400 naming the field (and the OpenAPI document says
the bounds), never an overflow deep in a driver."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: SQLite and PostgreSQL hold offsets, counts and version numbers as 64-bit integers.
MAX_INT64 = 2**63 - 1
#: The last second of the year 9999, the last ``datetime`` can hold.
MAX_UNIX_TIME = 253_402_300_799.0

#: A position in a topic or a log.
Offset = Annotated[int, Field(ge=0, le=MAX_INT64)]
#: How many items to return or act on (a route may return fewer).
Limit = Annotated[int, Field(ge=1, le=MAX_INT64)]
#: A version number.
Number = Annotated[int, Field(ge=1, le=MAX_INT64)]
#: A Unix time, in seconds.
UnixTime = Annotated[float, Field(ge=0, le=MAX_UNIX_TIME, allow_inf_nan=False)]
#: A length of time, in seconds.
Duration = Annotated[float, Field(gt=0, le=MAX_UNIX_TIME, allow_inf_nan=False)]
