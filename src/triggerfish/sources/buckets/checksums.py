"""Object checksums as S3 keeps them: CRC32, CRC32C, CRC64NVME, SHA1 and SHA256.

A ``Checksum`` is stored with an object, a part, or (algorithm and type only) a
multipart upload. Its value is the base64 of the big-endian digest, as S3's
``x-amz-checksum-*`` headers carry it. A multipart object's checksum is either
``COMPOSITE`` (the checksum of the parts' binary checksums, then ``-<number of
parts>``) or ``FULL_OBJECT`` (the CRC of the whole object, combined from the parts'
CRCs without reading their bytes again; CRC algorithms only, and the only type of
CRC64NVME). Objects written without a checksum get a CRC64NVME, as on S3.

CRC32C, CRC64NVME and the combining of CRCs come from ``awscrt``; CRC32 from zlib.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from awscrt import checksums as crt  # type: ignore[import-untyped]

CRC32 = "CRC32"
CRC32C = "CRC32C"
CRC64NVME = "CRC64NVME"
SHA1 = "SHA1"
SHA256 = "SHA256"
#: In S3's order of its documentation.
ALGORITHMS = (CRC32, CRC32C, CRC64NVME, SHA1, SHA256)
CRCS = frozenset({CRC32, CRC32C, CRC64NVME})
#: The algorithm of an object written without one.
DEFAULT = CRC64NVME

COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"

_SIZES = {CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32}
_CRC: dict[str, Callable[[bytes, int], int]] = {
    CRC32: zlib.crc32,
    CRC32C: crt.crc32c,
    CRC64NVME: crt.crc64nvme,
}
_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    CRC32: crt.combine_crc32,
    CRC32C: crt.combine_crc32c,
    CRC64NVME: crt.combine_crc64nvme,
}


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str  # one of ALGORITHMS
    value: str = ""  # base64, "-<parts>" after it when COMPOSITE; "" for an upload's choice
    type: str = FULL_OBJECT

    @property
    def header(self) -> str:
        """The header that carries it: ``x-amz-checksum-crc32`` ..."""
        return header_name(self.algorithm)

    @property
    def element(self) -> str:
        """The element of S3's XML documents that carries it: ``ChecksumCRC32`` ..."""
        return f"Checksum{self.algorithm}"

    def to_json(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "value": self.value, "type": self.type}

    @classmethod
    def from_json(cls, body: Any) -> Checksum | None:
        if not isinstance(body, dict) or body.get("algorithm") not in ALGORITHMS:
            return None
        return cls(
            str(body["algorithm"]), str(body.get("value", "")), str(body.get("type") or FULL_OBJECT)
        )


def header_name(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm.lower()}"


def size(algorithm: str) -> int:
    """The length of the algorithm's digest, in bytes."""
    return _SIZES[algorithm]


def decode(algorithm: str, value: str) -> bytes | None:
    """The digest a base64 value carries; None when it is not one of the algorithm's."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SIZES[algorithm] else None


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class Hasher:
    """Computes one algorithm's checksum over bytes given piece by piece."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._crc = _CRC.get(algorithm)
        self._state = 0
        self._hash = None if self._crc else hashlib.new(algorithm.lower())

    def update(self, data: bytes) -> None:
        if self._crc is not None:
            self._state = self._crc(data, self._state)
        else:
            assert self._hash is not None
            self._hash.update(data)

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return self._state.to_bytes(_SIZES[self.algorithm], "big")

    def checksum(self) -> Checksum:
        return Checksum(self.algorithm, encode(self.digest()))


def multipart(algorithm: str, kind: str, parts: Sequence[tuple[Checksum, int]]) -> Checksum:
    """The checksum of an object joined from ``parts`` (each part's checksum of
    ``algorithm`` and its size, in order), of type ``kind``."""
    digests = []
    for part, _length in parts:
        digest = decode(algorithm, part.value) if part.algorithm == algorithm else None
        if digest is None:
            raise ValueError(f"a part has no {algorithm} checksum")
        digests.append(digest)
    if kind == COMPOSITE:
        hasher = Hasher(algorithm)
        for digest in digests:
            hasher.update(digest)
        return Checksum(algorithm, f"{encode(hasher.digest())}-{len(parts)}", COMPOSITE)
    combine = _COMBINE[algorithm]
    crc = 0
    for (_part, length), digest in zip(parts, digests, strict=True):
        crc = combine(crc, int.from_bytes(digest, "big"), length)
    return Checksum(algorithm, encode(crc.to_bytes(_SIZES[algorithm], "big")), FULL_OBJECT)
