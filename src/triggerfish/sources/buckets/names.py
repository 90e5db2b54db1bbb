"""Bucket names and object keys: the rules S3 applies to new buckets and keys."""

from __future__ import annotations

import re

from triggerfish.sources.buckets.errors import InvalidBucketNameError, InvalidObjectError

BUCKET_RULE = (
    "3 to 63 characters: lowercase letters, digits, '.' and '-', starting and ending "
    "with a letter or digit, not shaped like an IP address"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
MAX_KEY_BYTES = 1024


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a bucket name, or None when it can."""
    if not _BUCKET.match(name):
        return f"invalid bucket name {name!r}: expected {BUCKET_RULE}"
    if ".." in name or ".-" in name or "-." in name:
        return f"invalid bucket name {name!r}: no '..', '.-' or '-.' ({BUCKET_RULE})"
    if _IP.match(name):
        return f"invalid bucket name {name!r}: it looks like an IP address"
    return None


def check_bucket_name(name: str) -> str:
    problem = bucket_name_problem(name)
    if problem:
        raise InvalidBucketNameError(problem, field="bucket")
    return name


def check_key(key: str) -> str:
    if not key:
        raise InvalidObjectError("InvalidArgument", "an object key cannot be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidObjectError("KeyTooLongError", "Your key is too long (1024 bytes at most)")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidObjectError("InvalidArgument", "an object key must be UTF-8") from None
    return key
