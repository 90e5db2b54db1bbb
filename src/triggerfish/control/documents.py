"""Named documents of the store (webhooks, brokers) read back as their typed models.

Every definition is validated when it is put, so a stored body parses; one that does
not (written by another release of Triggerfish) is left out with an error in the log,
as the broker relays leave it out, rather than failing every listing.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from triggerfish.store.sql import SqlStore

log = logging.getLogger("triggerfish.control")

Model = TypeVar("Model", bound=BaseModel)


async def typed_documents(store: SqlStore, kind: str, model: type[Model]) -> dict[str, Model]:
    """Every document of ``kind`` as a ``model``, by name (in name order)."""
    out: dict[str, Model] = {}
    for name, body in (await store.documents.list(kind)).items():
        try:
            out[name] = model.model_validate(body)
        except PydanticValidationError:
            log.exception("%s %s: its stored definition is not valid", kind, name)
    return out
