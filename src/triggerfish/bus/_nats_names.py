"""How the NATS bus names things on the server: streams, subjects, consumers, message ids.

Topic and group names may hold characters JetStream forbids in stream and consumer
names ('.', '*', '>', spaces, path separators) or gives a meaning to in subjects ('.').
``encode`` keeps ASCII letters, digits and '-' and writes every other byte of the UTF-8
form as ``_xx`` (two lower-case hex digits), '_' included, so that the encoding is
reversible and two names never share an encoding: ``_invoke.resize`` becomes
``_5finvoke_2eresize``. A name whose encoding would be too long for a file name on the
server is shortened and ends with a digest instead; the original name is always kept in
the stream's or consumer's ``description``, which is where the bus reads it back from.
"""

from __future__ import annotations

import hashlib
import re
import string
from urllib.parse import urlsplit, urlunsplit

from triggerfish.errors import ConfigError

_KEPT = frozenset(string.ascii_letters + string.digits + "-")
#: Stream and consumer names become directory names on the server: stay well under 255.
MAX_ENCODED = 160
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,32}$")


def encode(name: str) -> str:
    out: list[str] = []
    for char in name:
        if char in _KEPT:
            out.append(char)
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8"))
    encoded = "".join(out)
    if len(encoded) > MAX_ENCODED:
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).hexdigest()
        encoded = f"{encoded[: MAX_ENCODED - 18]}--{digest}"
    return encoded


def decode(encoded: str) -> str:
    """The name ``encode`` was given (for names short enough to be kept whole); a name
    that is no such encoding comes back unchanged."""
    out = bytearray()
    index = 0
    try:
        while index < len(encoded):
            if encoded[index] == "_":
                out.append(int(encoded[index + 1 : index + 3], 16))
                index += 3
            else:
                out += encoded[index].encode("utf-8")
                index += 1
        return out.decode("utf-8")
    except ValueError:
        return encoded


def check_prefix(prefix: str) -> str:
    if not PREFIX_PATTERN.match(prefix):
        raise ConfigError(
            f"NATS bus prefix {prefix!r} must be 1 to 32 letters, digits or '-' "
            "(it starts every stream name and subject of this Triggerfish installation)"
        )
    return prefix


def stream_name(prefix: str, topic: str) -> str:
    return f"{prefix}_{encode(topic)}"


def subject(prefix: str, topic: str) -> str:
    return f"{prefix}.t.{encode(topic)}"


def topics_filter(prefix: str) -> str:
    """The subject filter that matches the streams of every topic under ``prefix``."""
    return f"{prefix}.t.>"


def consumer_name(group: str) -> str:
    return encode(group)


def message_id(source: str, event_id: str) -> str:
    """The ``Nats-Msg-Id`` of an event: a digest of its ``(source, id)`` pair, because
    header values cannot carry every character a source or id may hold."""
    key = f"{len(source)}:{source}{event_id}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def redact(url: str) -> str:
    """``url`` without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
