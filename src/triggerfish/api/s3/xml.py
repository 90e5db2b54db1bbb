"""S3's XML documents: building responses and error documents, reading request bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

from starlette.responses import Response

from triggerfish.sources.buckets.errors import InvalidObjectError

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_TYPE = "application/xml"

#: A node of a document: (tag, text) or (tag, [children]); None values are left out.
Node = tuple[str, Any]


def iso_time(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def http_time(moment: float) -> str:
    return formatdate(moment, usegmt=True)


def _render(node: Node, out: list[str]) -> None:
    tag, value = node
    if value is None:
        return
    if isinstance(value, list):
        out.append(f"<{tag}>")
        for child in value:
            _render(child, out)
        out.append(f"</{tag}>")
    else:
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f"<{tag}>{escape(str(value))}</{tag}>")


def document(root: str, children: Iterable[Node], *, namespace: bool = True) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    out.append(f'<{root} xmlns="{NAMESPACE}">' if namespace else f"<{root}>")
    for child in children:
        _render(child, out)
    out.append(f"</{root}>")
    return "".join(out).encode("utf-8")


def xml_response(
    root: str, children: Iterable[Node], *, headers: dict[str, str] | None = None
) -> Response:
    return Response(document(root, children), media_type=XML_TYPE, headers=headers)


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    request_id: str,
    resource: str,
    head: bool = False,
    extra: Iterable[Node] = (),
) -> Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
    if head:
        # HEAD answers carry no body; clients read the status (and this header).
        headers["x-amz-error-code"] = code
        return Response(status_code=status, headers=headers)
    children: list[Node] = [("Code", code), ("Message", message), *extra]
    children += [("Resource", resource), ("RequestId", request_id), ("HostId", request_id)]
    body = document("Error", children, namespace=False)
    return Response(body, status_code=status, media_type=XML_TYPE, headers=headers)


def parse(body: bytes) -> ET.Element:
    """The root element, with namespaces dropped from every tag."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise InvalidObjectError(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our "
            "published schema.",
        ) from None
    for element in root.iter():
        if "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root
