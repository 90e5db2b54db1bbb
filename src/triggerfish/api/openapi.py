"""The OpenAPI document (``/openapi.json``): FastAPI's, with the errors as the API
answers them.

Routes declare their error answers with ``problems.RESPONSES`` (problem+json) or, on the
Lambda API, ``lambda_.errors.RESPONSES`` (Lambda's error document); ``Application``
adds the schemas those refer to. FastAPI also declares a 422 with a body of its own on
every route that takes parameters, which this API never answers (a request that does
not validate gets 400, see ``problems.request_validation_error``): those are taken out.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from triggerfish.api.lambda_.errors import LambdaErrorDocument
from triggerfish.api.problems import Problem

ERROR_MODELS = (Problem, LambdaErrorDocument)
FASTAPI_VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"


def _is_fastapi_422(answer: dict[str, Any]) -> bool:
    content = answer.get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("$ref") == FASTAPI_VALIDATION_ERROR)


class Application(FastAPI):
    """A FastAPI application whose OpenAPI document declares the errors it answers."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = declare_errors(super().openapi())
        return self.openapi_schema


def declare_errors(document: dict[str, Any]) -> dict[str, Any]:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            if _is_fastapi_422(answers.get("422", {})):
                del answers["422"]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for model in ERROR_MODELS:
        schemas[model.__name__] = model.model_json_schema()
    return document
