"""The CloudEvents conformance cases of shared/conformance, read in place, and the HTTP
requests they describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from triggerfish.events.model import is_json_content_type

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
CASES_DIR = CONFORMANCE / "cloudevents" / "yaml"

# The HTTP binding percent-encodes space, '"', '%' and everything outside printable ASCII.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def load_cases() -> list[Any]:
    if not CASES_DIR.is_dir():
        return [pytest.param(None, None, id="conformance-data-missing")]
    cases: list[Any] = []
    for path in sorted(CASES_DIR.rglob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            documents = list(yaml.load_all(handle, Loader=yaml.BaseLoader))
        for index, document in enumerate(documents):
            if not document:
                continue
            written = document.get("Mode", "binary")
            other = "structured" if written == "binary" else "binary"
            name = f"{path.relative_to(CASES_DIR)}#{index}"
            cases.append(pytest.param(document, written, id=f"{name}-{written}"))
            cases.append(pytest.param(document, other, id=f"{name}-as-{other}"))
    return cases


def split(document: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    attributes = dict(document["ContextAttributes"])
    extensions = attributes.pop("Extensions", None) or {}
    return attributes, dict(extensions)


def binary_request(document: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    attributes, extensions = split(document)
    headers = dict(document.get("TransportExtensions") or {})
    for name, value in {**attributes, **extensions}.items():
        if name == "datacontenttype":
            headers["Content-Type"] = value
        else:
            headers[f"ce-{name}"] = quote(value, safe=_SAFE)
    return headers, document.get("Data", "").encode("utf-8")


def structured_request(document: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    attributes, extensions = split(document)
    body: dict[str, Any] = {**attributes, **extensions}
    if "Data" in document:
        data = document["Data"]
        content_type = attributes.get("datacontenttype")
        body["data"] = json.loads(data) if is_json_content_type(content_type) else data
    headers = dict(document.get("TransportExtensions") or {})
    headers["Content-Type"] = "application/cloudevents+json"
    return headers, json.dumps(body, ensure_ascii=False).encode("utf-8")
