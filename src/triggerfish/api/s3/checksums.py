"""S3's checksum headers: what a request names, checking a body against it, and the
headers and XML elements that give a stored checksum back.

A request names at most one algorithm: by an ``x-amz-checksum-<alg>`` header with its
value, by ``x-amz-trailer: x-amz-checksum-<alg>`` (the value comes in the trailer of an
``aws-chunked`` body), or by ``x-amz-sdk-checksum-algorithm`` alone. A body is checked
against the value it names (``BadDigest`` when it differs, as S3 answers) and the
checksum kept is that of the algorithm the caller stores, computed in the same pass.
Checksums are given back on HEAD and GET only when asked (``x-amz-checksum-mode:
ENABLED``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from triggerfish.api.s3.xml import Node
from triggerfish.sources.buckets import InvalidObjectError
from triggerfish.sources.buckets.checksums import (
    ALGORITHMS,
    COMPOSITE,
    CRC64NVME,
    CRCS,
    DEFAULT,
    FULL_OBJECT,
    Checksum,
    Hasher,
    decode,
    header_name,
)

_PREFIX = "x-amz-checksum-"


def _invalid(message: str) -> InvalidObjectError:
    return InvalidObjectError("InvalidRequest", message)


def _algorithm(name: str, what: str) -> str:
    algorithm = name.strip().upper()
    if algorithm not in ALGORITHMS:
        raise _invalid(
            f"{what}: the checksum algorithm {name.strip()!r} is not supported; use one of "
            f"{', '.join(ALGORITHMS)}."
        )
    return algorithm


@dataclass(frozen=True, slots=True)
class Named:
    """The checksum a request names: its algorithm, and its value when it is given in a
    header (None when it comes in the trailer, or is not given)."""

    algorithm: str | None = None
    value: str | None = None
    trailer: bool = False


def named(headers: Mapping[str, str]) -> Named:
    """What the request's headers name; ``InvalidRequest`` when they contradict each
    other or a value is not one of its algorithm's."""
    given = [alg for alg in ALGORITHMS if header_name(alg) in headers]
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    trailed = None
    if trailer:
        if not trailer.startswith(_PREFIX):
            raise _invalid(f"The trailer {trailer!r} is not supported.")
        trailed = _algorithm(trailer[len(_PREFIX) :], "x-amz-trailer")
    if len(given) + (trailed is not None) > 1:
        raise _invalid(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    sdk = headers.get("x-amz-sdk-checksum-algorithm")
    chosen = given[0] if given else trailed
    if sdk is not None:
        algorithm = _algorithm(sdk, "x-amz-sdk-checksum-algorithm")
        if chosen is not None and algorithm != chosen:
            raise _invalid("Value for x-amz-sdk-checksum-algorithm header is invalid.")
        chosen = algorithm
    if given:
        value = headers[header_name(given[0])].strip()
        if decode(given[0], value) is None:
            raise _invalid(f"Value for {header_name(given[0])} header is invalid.")
        return Named(given[0], value)
    return Named(chosen, None, trailer=trailed is not None)


class BodyChecksum:
    """Checks a body against the checksum its request names, and computes the one of
    ``keep`` (the named algorithm when None) in the same pass."""

    def __init__(self, request: Named, keep: str | None = None) -> None:
        self.request = request
        self.keep = keep or request.algorithm
        wanted = {alg for alg in (request.algorithm, self.keep) if alg is not None}
        self._hashers = {alg: Hasher(alg) for alg in wanted}

    def update(self, data: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def finish(self, trailers: Mapping[str, str]) -> Checksum | None:
        """The checksum kept; ``BadDigest`` when the body does not match the named one."""
        algorithm = self.request.algorithm
        if algorithm is not None:
            given = self.request.value
            if self.request.trailer:
                given = trailers.get(header_name(algorithm))
                if given is None:
                    raise _invalid(
                        f"The body's trailer has no {header_name(algorithm)}, which "
                        "x-amz-trailer announced."
                    )
                if decode(algorithm, given) is None:
                    raise _invalid(
                        f"Value for {header_name(algorithm)} trailing header is invalid."
                    )
            computed = self._hashers[algorithm].checksum()
            if given is not None and given.strip() != computed.value:
                raise InvalidObjectError(
                    "BadDigest",
                    f"The {algorithm} you specified did not match the calculated checksum.",
                )
        return self._hashers[self.keep].checksum() if self.keep else None


def upload_choice(headers: Mapping[str, str]) -> Checksum | None:
    """The algorithm and type CreateMultipartUpload chooses (``x-amz-checksum-algorithm``,
    ``x-amz-checksum-type``): COMPOSITE by default, FULL_OBJECT for CRC64NVME, which
    has no other; FULL_OBJECT only for CRCs."""
    name = headers.get("x-amz-checksum-algorithm")
    kind = headers.get("x-amz-checksum-type", "").strip().upper() or None
    if name is None:
        if kind is not None:
            raise _invalid(
                "The x-amz-checksum-type header can only be used with the "
                "x-amz-checksum-algorithm header."
            )
        return None
    algorithm = _algorithm(name, "x-amz-checksum-algorithm")
    if kind is None:
        kind = FULL_OBJECT if algorithm == CRC64NVME else COMPOSITE
    if kind not in (COMPOSITE, FULL_OBJECT):
        raise _invalid("Value for x-amz-checksum-type header is invalid.")
    if kind == FULL_OBJECT and algorithm not in CRCS:
        raise _invalid(f"The {algorithm} algorithm does not support the FULL_OBJECT type.")
    if kind == COMPOSITE and algorithm == CRC64NVME:
        raise _invalid("The CRC64NVME algorithm does not support the COMPOSITE type.")
    return Checksum(algorithm, "", kind)


def wanted(headers: Mapping[str, str]) -> bool:
    """True when a HEAD or GET asks for the object's checksum."""
    return headers.get("x-amz-checksum-mode", "").strip().upper() == "ENABLED"


def response_headers(checksum: Checksum | None, *, with_type: bool = True) -> dict[str, str]:
    if checksum is None or not checksum.value:
        return {}
    headers = {checksum.header: checksum.value}
    if with_type:
        headers["x-amz-checksum-type"] = checksum.type
    return headers


def nodes(checksum: Checksum | None, *, with_type: bool = True) -> list[Node]:
    """The elements of a result document that carry it (``ChecksumCRC32`` ...)."""
    if checksum is None or not checksum.value:
        return []
    out: list[Node] = [(checksum.element, checksum.value)]
    if with_type:
        out.append(("ChecksumType", checksum.type))
    return out


def put_algorithm(headers: Mapping[str, str]) -> str:
    """The algorithm of the checksum PutObject stores: the one named, else CRC64NVME."""
    return named(headers).algorithm or DEFAULT


def copy_algorithm(headers: Mapping[str, str]) -> str | None:
    """The algorithm CopyObject asks for (``x-amz-checksum-algorithm``), if any."""
    name = headers.get("x-amz-checksum-algorithm")
    return None if name is None else _algorithm(name, "x-amz-checksum-algorithm")


def part_algorithm(upload: Checksum | None, headers: Mapping[str, str]) -> str:
    """The algorithm of the checksum UploadPart stores: its upload's (the request may
    name no other), else CRC64NVME, of which the object's checksum is made."""
    request = named(headers)
    if upload is not None and request.algorithm not in (None, upload.algorithm):
        raise _invalid(
            "Checksum Type mismatch occurred, expected checksum Type: "
            f"{upload.algorithm.lower()}, actual checksum Type: {str(request.algorithm).lower()}"
        )
    return upload.algorithm if upload is not None else DEFAULT


def completion(root: ET.Element, headers: Mapping[str, str]) -> tuple[dict[int, str], str | None]:
    """What a CompleteMultipartUpload says the checksums are: each part's (from the
    ``Checksum<alg>`` elements of its ``<Part>``, by number) and the whole object's
    (its ``x-amz-checksum-<alg>`` header)."""
    parts: dict[int, str] = {}
    for part in root.findall("Part"):
        number = (part.findtext("PartNumber") or "").strip()
        for algorithm in ALGORITHMS:
            value = part.findtext(f"Checksum{algorithm}")
            if value and number.isdigit():
                parts[int(number)] = value.strip()
    whole = next((headers[h] for a in ALGORITHMS if (h := header_name(a)) in headers), None)
    return parts, whole
