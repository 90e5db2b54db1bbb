"""``@idempotent``: a handler's side effects happen once per key, however many times
its event is delivered (docs/idempotency.md).

Triggerfish delivers events at least once. A handler decorated with ``@idempotent``
claims a key (from the event: a dotted path, a callable, or by default the
CloudEvent's source and id) in the node's store before it runs:

- the first delivery of a key runs the handler and keeps its result (as JSON);
- a later delivery of a key that was handled returns that result without running;
- a delivery that finds the key claimed by another still running waits for it (at
  most the rest of its own invocation) and returns its result, or raises
  ``IdempotencyInProgress``, an error, so the event is delivered again later;
- a handler that raises releases its claim, so the next delivery runs it again;
- a claim carries a lease (the rest of the invocation and a margin): the claim of an
  environment that died is taken over once its lease ends.

Records belong to the function whose own access key signs the calls
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` in its
environment), so they are shared by every node of a cluster and no function reads
another's. ``MemoryRecords`` keeps them in memory instead, for unit tests of handlers.
``idempotent_function`` does the same for any function a handler calls.

Importing this package costs little: the HTTP client is imported on the first call.
"""

from triggerfish.idempotency.decorators import (
    DEFAULT_EXPIRES,
    idempotent,
    idempotent_function,
)
from triggerfish.idempotency.errors import IdempotencyError, IdempotencyInProgress
from triggerfish.idempotency.records import Claim, HttpRecords, MemoryRecords, Records

__all__ = [
    "DEFAULT_EXPIRES",
    "Claim",
    "HttpRecords",
    "IdempotencyError",
    "IdempotencyInProgress",
    "MemoryRecords",
    "Records",
    "idempotent",
    "idempotent_function",
]
