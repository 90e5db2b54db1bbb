"""Broker URLs: secrets come from the environment, and never reach a log.

``${NAME}`` anywhere in a source's or a named broker's ``url`` is replaced by the
server's environment variable ``NAME`` when the source or the sink starts; a deploy
that refers to a variable the server does not have is refused, naming the reference.
Logs and errors show ``redact_url`` of the URL as written, with any password replaced
by ``***``; events carry ``public_url``, which has no user part at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from triggerfish.errors import ConfigError

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_url(
    template: str, environ: Mapping[str, str] | None = None, *, where: str = "url"
) -> str:
    """``template`` with every ``${NAME}`` replaced by the environment's value."""
    env = os.environ if environ is None else environ
    missing = [name for name in _VARIABLE.findall(template) if name not in env]
    if missing:
        raise ConfigError(
            f"{where}: ${{{missing[0]}}}: the server's environment variable {missing[0]} "
            "is not set; set it where `triggerfish up` runs and restart it, then deploy "
            "again (a url reads the server's environment, not Triggerfish secrets)"
        )
    return _VARIABLE.sub(lambda match: env[match.group(1)], template)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``; safe to log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unreadable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def public_url(url: str) -> str:
    """``scheme://host[:port][/path]`` of ``url``: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_scheme(url: str, schemes: tuple[str, ...], *, where: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(
            f"{where}: expected a url starting with {wanted}, got {redact_url(url)!r}"
        )
