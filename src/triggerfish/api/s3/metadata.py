"""User metadata (``x-amz-meta-*``) values beyond US-ASCII, as S3 carries them.

HTTP headers are ASCII in practice, and the AWS SDKs refuse other characters in
metadata before sending. S3's rule for the rest: a value sent as RFC 2047 encoded
words (``=?UTF-8?B?...?=``) is decoded before it is stored, and a stored value that is
not ASCII is sent back RFC 2047 encoded. A value sent as raw UTF-8 bytes is taken as
UTF-8.
"""

from __future__ import annotations

import base64
from email.header import decode_header


def stored_value(sent: str) -> str:
    """The value to store for a header value as received (decoded as latin-1)."""
    if "=?" in sent and "?=" in sent:
        try:
            pieces = decode_header(sent)
        except ValueError:
            return sent
        return "".join(
            piece.decode(charset or "ascii", errors="replace")
            if isinstance(piece, bytes)
            else piece
            for piece, charset in pieces
        )
    if not sent.isascii():
        try:
            return sent.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return sent
    return sent


def sent_value(stored: str) -> str:
    """The header value that carries a stored value."""
    if stored.isascii():
        return stored
    return "=?UTF-8?B?" + base64.b64encode(stored.encode("utf-8")).decode("ascii") + "?="
