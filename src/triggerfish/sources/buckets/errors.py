"""Errors of the object store, each carrying the S3 error code and HTTP status that
the S3-compatible API answers with."""

from __future__ import annotations

from typing import ClassVar

from triggerfish.errors import ConflictError, NotFoundError, ValidationError


class NoSuchBucketError(NotFoundError):
    code: ClassVar[str] = "NoSuchBucket"
    status: ClassVar[int] = 404


class NoSuchKeyError(NotFoundError):
    code: ClassVar[str] = "NoSuchKey"
    status: ClassVar[int] = 404


class NoSuchUploadError(NotFoundError):
    code: ClassVar[str] = "NoSuchUpload"
    status: ClassVar[int] = 404


class BucketExistsError(ConflictError):
    code: ClassVar[str] = "BucketAlreadyOwnedByYou"
    status: ClassVar[int] = 409


class BucketNotEmptyError(ConflictError):
    code: ClassVar[str] = "BucketNotEmpty"
    status: ClassVar[int] = 409


class InvalidBucketNameError(ValidationError):
    code: ClassVar[str] = "InvalidBucketName"
    status: ClassVar[int] = 400


class InvalidObjectError(ValidationError):
    """A request about objects that S3 refuses; ``code`` names why (InvalidPart,
    InvalidPartOrder, EntityTooSmall, KeyTooLongError, InvalidRequest ...)."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class PreconditionFailedError(ConflictError):
    code: ClassVar[str] = "PreconditionFailed"
    status: ClassVar[int] = 412

    def __init__(
        self, message: str = "At least one of the pre-conditions you specified did not hold"
    ) -> None:
        super().__init__(message)
