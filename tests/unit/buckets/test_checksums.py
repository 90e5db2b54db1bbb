"""Object checksums computed as S3 computes them: each algorithm over pieces, a
multipart object's composite and full-object checksums, and CORS origin patterns."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triggerfish.api.s3.cors import wildcard_match
from triggerfish.sources.buckets.checksums import (
    ALGORITHMS,
    COMPOSITE,
    CRCS,
    FULL_OBJECT,
    Checksum,
    Hasher,
    decode,
    multipart,
)


def whole(algorithm: str, data: bytes) -> Checksum:
    hasher = Hasher(algorithm)
    hasher.update(data)
    return hasher.checksum()


def test_known_values() -> None:
    data = b"hello world"
    assert (
        whole("CRC32", data).value == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    )
    assert whole("SHA256", data).value == base64.b64encode(hashlib.sha256(data).digest()).decode()
    # The check values of the algorithms' definitions, over "123456789".
    assert decode("CRC32C", whole("CRC32C", b"123456789").value) == bytes.fromhex("e3069283")
    assert decode("CRC64NVME", whole("CRC64NVME", b"123456789").value) == bytes.fromhex(
        "ae8b14860a799888"
    )


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_pieces_and_full_object_crcs_equal_one_pass(pieces: list[bytes]) -> None:
    for algorithm in ALGORITHMS:
        hasher = Hasher(algorithm)
        for piece in pieces:
            hasher.update(piece)
        assert hasher.checksum() == whole(algorithm, b"".join(pieces))
        if algorithm in CRCS:
            parts = [(whole(algorithm, piece), len(piece)) for piece in pieces]
            assert multipart(algorithm, FULL_OBJECT, parts) == whole(algorithm, b"".join(pieces))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_composite_is_the_checksum_of_the_parts_checksums(algorithm: str) -> None:
    pieces = [b"a" * 10, b"b" * 20, b"c"]
    parts = [(whole(algorithm, piece), len(piece)) for piece in pieces]
    raw = b"".join(decode(algorithm, part.value) or b"" for part, _ in parts)
    expected = f"{whole(algorithm, raw).value}-3"
    assert multipart(algorithm, COMPOSITE, parts) == Checksum(algorithm, expected, COMPOSITE)


def test_a_value_of_the_wrong_size_is_not_a_checksum() -> None:
    assert decode("CRC32", base64.b64encode(b"12345").decode()) is None
    assert decode("SHA1", "not base64!") is None


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("*", "https://anything.org", True),
        ("https://*.example.com", "https://app.example.com", True),
        ("https://*.example.com", "https://example.com", False),
        ("https://*.example.com", "http://app.example.com", False),
        ("http://localhost:*", "http://localhost:5173", True),
        ("https://app.example.com", "https://app.example.com", True),
        ("https://app.example.com", "https://app.example.co", False),
        ("a*a", "a", False),
    ],
)
def test_one_wildcard_origin_patterns(pattern: str, value: str, matches: bool) -> None:
    assert wildcard_match(pattern, value) is matches
