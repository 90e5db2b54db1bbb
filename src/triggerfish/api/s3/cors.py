"""Cross-origin resource sharing for the buckets, as S3 does it.

A bucket's CORS configuration (PutBucketCors, GetBucketCors, DeleteBucketCors: the
``?cors`` subresource, S3's ``CORSConfiguration`` document) is a list of rules, kept
with the bucket's settings (``control.bucket_settings``). A browser's preflight
(``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) on a bucket or an
object is answered without a signature, as S3 answers it: by the first rule whose
``AllowedOrigin`` matches the origin (one ``*`` stands for any run of characters),
whose ``AllowedMethod`` holds the method, and whose ``AllowedHeader`` patterns cover
every header the browser asks for; ``403 AccessForbidden`` when none does. A signed
request that carries ``Origin`` gets the same rule's ``Access-Control-*`` headers on
its answer (its error too), and every answer to such a request carries ``Vary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.s3.request import S3Request
from triggerfish.api.s3.xml import Node, error_response, parse, xml_response
from triggerfish.control.bucket_settings import BucketSettings
from triggerfish.sources.buckets import BucketStore, InvalidObjectError

SETTING = "cors"
METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
OPERATIONS = {"GET": "GetBucketCors", "PUT": "PutBucketCors", "DELETE": "DeleteBucketCors"}


@dataclass(frozen=True, slots=True)
class CorsRule:
    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    max_age: int | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "origins": list(self.origins),
            "methods": list(self.methods),
            "headers": list(self.headers),
            "expose": list(self.expose),
            "max_age": self.max_age,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CorsRule:
        return cls(
            origins=tuple(body.get("origins", ())),
            methods=tuple(body.get("methods", ())),
            headers=tuple(body.get("headers", ())),
            expose=tuple(body.get("expose", ())),
            max_age=body.get("max_age"),
            id=body.get("id"),
        )

    def origin_matches(self, origin: str) -> str | None:
        """The pattern that lets ``origin`` in, if one does."""
        return next((p for p in self.origins if wildcard_match(p, origin)), None)

    def headers_allowed(self, asked: list[str]) -> bool:
        return all(any(wildcard_match(p.lower(), name) for p in self.headers) for name in asked)


def wildcard_match(pattern: str, value: str) -> bool:
    """``pattern`` with at most one ``*``, standing for any run of characters."""
    if "*" not in pattern:
        return pattern == value
    head, _, tail = pattern.partition("*")
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _invalid(message: str) -> InvalidObjectError:
    return InvalidObjectError("InvalidRequest", message)


def _malformed() -> InvalidObjectError:
    return InvalidObjectError(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )


def parse_rules(body: bytes) -> list[CorsRule]:
    """The rules of a ``CORSConfiguration``, checked as S3 checks them."""
    root = parse(body)
    if root.tag != "CORSConfiguration":
        raise _malformed()
    rules = []
    for element in root.findall("CORSRule"):
        texts = {
            tag: [(child.text or "").strip() for child in element.findall(tag)]
            for tag in ("AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader")
        }
        if not texts["AllowedOrigin"] or not texts["AllowedMethod"]:
            raise _malformed()
        for method in texts["AllowedMethod"]:
            if method not in METHODS:
                raise _invalid(
                    f"Found unsupported HTTP method in CORS config. Unsupported method is {method}"
                )
        for origin in texts["AllowedOrigin"]:
            if origin.count("*") > 1:
                raise _invalid(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
        for header in texts["AllowedHeader"]:
            if header.count("*") > 1:
                raise _invalid(f'AllowedHeader "{header}" can not have more than one wildcard.')
        max_age_text = element.findtext("MaxAgeSeconds")
        max_age = None
        if max_age_text is not None:
            if not max_age_text.strip().isdigit():
                raise _malformed()
            max_age = int(max_age_text.strip())
        rule_id = element.findtext("ID")
        rules.append(
            CorsRule(
                origins=tuple(texts["AllowedOrigin"]),
                methods=tuple(texts["AllowedMethod"]),
                headers=tuple(texts["AllowedHeader"]),
                expose=tuple(texts["ExposeHeader"]),
                max_age=max_age,
                id=rule_id.strip() if rule_id is not None else None,
            )
        )
    if not rules:
        raise _malformed()
    if len(rules) > MAX_RULES:
        raise _invalid(f"The CORS configuration must have at most {MAX_RULES} rules.")
    return rules


def _rule_nodes(rule: CorsRule) -> list[Node]:
    nodes: list[Node] = [("ID", rule.id)]
    nodes += [("AllowedHeader", h) for h in rule.headers]
    nodes += [("AllowedMethod", m) for m in rule.methods]
    nodes += [("AllowedOrigin", o) for o in rule.origins]
    nodes += [("ExposeHeader", h) for h in rule.expose]
    nodes.append(("MaxAgeSeconds", rule.max_age))
    return nodes


def _answer(rule: CorsRule, pattern: str, origin: str) -> dict[str, str]:
    headers = {
        "access-control-allow-origin": "*" if pattern == "*" else origin,
        "access-control-allow-methods": ", ".join(rule.methods),
        "vary": VARY,
    }
    if pattern != "*":
        headers["access-control-allow-credentials"] = "true"
    if rule.expose:
        headers["access-control-expose-headers"] = ", ".join(rule.expose)
    if rule.max_age is not None:
        headers["access-control-max-age"] = str(rule.max_age)
    return headers


def match(
    rules: list[CorsRule], origin: str, method: str, asked: list[str] | None = None
) -> dict[str, str] | None:
    """The ``Access-Control-*`` headers of the first rule that allows the request
    (``asked``: the headers a preflight names), or None."""
    for rule in rules:
        pattern = rule.origin_matches(origin)
        if pattern is None or method not in rule.methods:
            continue
        if asked is not None and not rule.headers_allowed(asked):
            continue
        headers = _answer(rule, pattern, origin)
        if asked:
            headers["access-control-allow-headers"] = ", ".join(asked)
        return headers
    return None


class Cors:
    """The CORS calls of the S3 API, over the buckets' settings."""

    def __init__(self, settings: BucketSettings) -> None:
        self.settings = settings

    async def rules(self, bucket: str) -> list[CorsRule] | None:
        body = await self.settings.get(bucket, SETTING)
        if body is None:
            return None
        return [CorsRule.from_json(rule) for rule in body.get("rules", ())]

    def handler(self, operation: str) -> Any:
        return {
            "GetBucketCors": self.get,
            "PutBucketCors": self.put,
            "DeleteBucketCors": self.delete,
        }[operation]

    async def get(self, store: BucketStore, req: S3Request) -> Response:
        assert req.bucket is not None
        await store.check_bucket(req.bucket)
        rules = await self.rules(req.bucket)
        if rules is None:
            raise InvalidObjectError(
                "NoSuchCORSConfiguration", "The CORS configuration does not exist", status=404
            )
        return xml_response("CORSConfiguration", [("CORSRule", _rule_nodes(r)) for r in rules])

    async def put(self, store: BucketStore, req: S3Request) -> Response:
        assert req.bucket is not None
        await store.check_bucket(req.bucket)
        rules = parse_rules(await req.read_small())
        await self.settings.put(req.bucket, SETTING, {"rules": [r.to_json() for r in rules]})
        return Response()

    async def delete(self, store: BucketStore, req: S3Request) -> Response:
        assert req.bucket is not None
        await store.check_bucket(req.bucket)
        await self.settings.delete(req.bucket, SETTING)
        return Response(status_code=204)

    async def preflight(self, store: BucketStore, request: Request, req: S3Request) -> Response:
        """The answer to a browser's ``OPTIONS`` preflight: unsigned, as on S3."""
        origin = request.headers.get("origin")
        method = request.headers.get("access-control-request-method")

        def refuse(code: str, message: str, status: int) -> Response:
            return error_response(
                code, message, status, request_id=req.request_id, resource=req.resource
            )

        if not origin:
            return refuse(
                "BadRequest", "Insufficient information. Origin request header needed.", 400
            )
        if not method:
            return refuse("BadRequest", "Invalid Access-Control-Request-Method: null", 400)
        if req.bucket is None:
            return refuse("BadRequest", "A preflight request names a bucket.", 400)
        await store.check_bucket(req.bucket)
        rules = await self.rules(req.bucket)
        if rules is None:
            return refuse(
                "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", 403
            )
        asked_text = request.headers.get("access-control-request-headers", "")
        asked = [h.strip().lower() for h in asked_text.split(",") if h.strip()]
        headers = match(rules, origin, method.strip(), asked)
        if headers is None:
            return refuse(
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the "
                "evalution of Origin, request method / Access-Control-Request-Method or "
                "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                403,
            )
        return Response(headers=headers)

    async def decorate(self, req: S3Request, response: Response) -> None:
        """Add the matching rule's headers to the answer of a request with ``Origin``."""
        origin = req.headers.get("origin")
        if not origin or req.bucket is None:
            return
        rules = await self.rules(req.bucket)
        if rules is None:
            return
        response.headers["vary"] = VARY
        headers = match(rules, origin, req.method)
        if headers is not None:
            del headers["vary"]
            response.headers.update(headers)
