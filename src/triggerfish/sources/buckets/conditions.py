"""Conditional writes: a PutObject, CopyObject or CompleteMultipartUpload that stores
its object only if the key's current object is what the writer expects (S3's
``If-None-Match: *`` and ``If-Match: <etag>``).

The index checks the condition inside the transaction that writes the key's row, with
that row locked (or, where there is none yet, by inserting it only if it is still
absent), so of two conditional writers of one key exactly one wins and the other is
told so: nothing is written in between the check and the write.
"""

from __future__ import annotations

from dataclasses import dataclass

from triggerfish.sources.buckets.errors import NoSuchKeyError, PreconditionFailedError


@dataclass(frozen=True, slots=True)
class WriteCondition:
    #: Write only if the current object's ETag (without quotes) is one of these; ``*``
    #: matches any object.
    if_match: tuple[str, ...] = ()
    #: Write only if the key has no object (``If-None-Match: *``).
    if_absent: bool = False

    def check(self, current: str | None) -> None:
        """Raise unless a write may replace the object whose ETag is ``current`` (None:
        the key has none)."""
        if self.if_absent and current is not None:
            raise PreconditionFailedError()
        if self.if_match:
            if current is None:
                raise NoSuchKeyError("The specified key does not exist.")
            if "*" not in self.if_match and current not in self.if_match:
                raise PreconditionFailedError()
