"""The built-in object store (on the node's disk, or in the store of a cluster) and
``bucket`` triggers."""

from triggerfish.sources.buckets.conditions import WriteCondition
from triggerfish.sources.buckets.errors import (
    BucketExistsError,
    BucketNotEmptyError,
    InvalidBucketNameError,
    InvalidObjectError,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchUploadError,
    PreconditionFailedError,
)
from triggerfish.sources.buckets.index import ObjectRow, PartRow, UploadRow
from triggerfish.sources.buckets.kind import BucketKind
from triggerfish.sources.buckets.notifications import Actor, encode_key
from triggerfish.sources.buckets.store import BucketStore, Listing, NewObject

__all__ = [
    "Actor",
    "BucketExistsError",
    "BucketKind",
    "BucketNotEmptyError",
    "BucketStore",
    "InvalidBucketNameError",
    "InvalidObjectError",
    "Listing",
    "NewObject",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "NoSuchUploadError",
    "ObjectRow",
    "PartRow",
    "PreconditionFailedError",
    "UploadRow",
    "WriteCondition",
    "encode_key",
]
