"""The S3-compatible API of the built-in object store."""

from triggerfish.api.s3.app import S3App, S3Middleware, default_domains, wants_s3

__all__ = ["S3App", "S3Middleware", "default_domains", "wants_s3"]
