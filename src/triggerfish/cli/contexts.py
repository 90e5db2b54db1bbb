"""Saved contexts: the servers a person logged in to, and how a command picks its server.

``triggerfish login`` keeps each server's URL and token as a named profile in
``contexts.toml`` in the person's config folder (``config.user_config_dir``), readable by
its owner alone (mode 0600) and replaced whole on each change, so that a crash never
leaves half a file. One profile may be the current context.

A command finds its server by the first of these that applies (``resolve``):

1. ``TRIGGERFISH_URL`` (environment or ``triggerfish.toml``);
2. ``--data-dir`` (or ``TRIGGERFISH_DATA_DIR``): the local server of that folder;
3. ``--profile NAME`` or ``TRIGGERFISH_PROFILE``: that saved profile;
4. the current context (``triggerfish context use NAME``);
5. the local server of ``./.triggerfish``.

A local server is found at the URL ``triggerfish up`` recorded in its data directory
(unless a host or port is configured), with the admin token kept there.
``TRIGGERFISH_TOKEN`` is sent to whichever server is chosen.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from triggerfish.config import Settings, user_config_dir
from triggerfish.errors import ConfigError

DEFAULT_PROFILE = "default"
PROFILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN_ID = re.compile(r"^(tfk_[a-z0-9]{12})_")
_DEFAULTS = Settings()


def contexts_path(environ: dict[str, str] | None = None) -> Path:
    return user_config_dir(environ) / "contexts.toml"


def check_profile_name(name: str) -> str:
    if not PROFILE_PATTERN.match(name):
        raise ConfigError(
            f"invalid profile name {name!r}: use 1 to 64 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def mask_token(token: str) -> str:
    """Enough of a token to tell which it is, never enough to use it: an API token's
    public id (as ``triggerfish tokens ls`` shows it), else its last four characters."""
    if not token:
        return "(none)"
    match = _TOKEN_ID.match(token)
    if match:
        return f"{match.group(1)}_****"
    return f"****{token[-4:]}" if len(token) >= 16 else "****"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    url: str
    token: str


@dataclass(slots=True)
class Contexts:
    """The saved profiles and the current one, as read from (and written to) ``path``."""

    path: Path
    profiles: dict[str, Profile] = field(default_factory=dict)
    current: str = ""

    @classmethod
    def load(cls, path: Path | None = None) -> Contexts:
        path = path or contexts_path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        try:
            document = tomllib.loads(text)
            profiles = {
                name: Profile(name, str(entry["url"]), str(entry.get("token", "")))
                for name, entry in document.get("profiles", {}).items()
            }
            current = str(document.get("current", ""))
        except (tomllib.TOMLDecodeError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigError(
                f"{path} is not a valid contexts file ({exc}): fix it, or delete it and "
                "log in again with `triggerfish login URL`"
            ) from None
        return cls(path, profiles, current)

    def get(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            saved = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigError(
                f"no saved context named {name!r} (saved: {saved}); save it with "
                f"`triggerfish login URL --profile {name}`"
            ) from None

    def save(self) -> None:
        """Write the whole file anew, readable by its owner only, then move it in place."""
        lines = [
            "# Triggerfish CLI contexts, written by `triggerfish login`.",
            "# It holds API tokens: keep it private (mode 0600).",
        ]
        if self.current:
            lines.append(f"current = {_toml_string(self.current)}")
        for name in sorted(self.profiles):
            profile = self.profiles[name]
            lines += [
                "",
                f"[profiles.{_toml_string(name)}]",
                f"url = {_toml_string(profile.url)}",
                f"token = {_toml_string(profile.token)}",
            ]
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600: the token is never readable by others.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".contexts-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _toml_string(text: str) -> str:
    # A JSON string (quotes, backslashes and control characters escaped) is a valid TOML
    # basic string.
    return orjson.dumps(text).decode()


@dataclass(frozen=True, slots=True)
class Target:
    """The server a command talks to, its token, and why (for ``context show``)."""

    url: str
    token: str
    source: str
    token_source: str


def resolve(
    settings: Settings,
    contexts: Callable[[], Contexts] = Contexts.load,
    *,
    profile: str = "",
    data_dir_given: bool = False,
) -> Target:
    """The server and token a command uses (the order is in the module docstring); the
    saved contexts are read only when they decide."""
    chosen: Profile | None = None
    if settings.url:
        url, source = settings.url.rstrip("/"), "the url setting (TRIGGERFISH_URL)"
    else:
        url, source = local_url(settings), f"the server of {settings.data_dir}"
        if not data_dir_given:
            saved = contexts()
            if profile or saved.current:
                chosen = saved.get(profile or saved.current)
                kind = "profile" if profile else "current context"
                url, source = chosen.url, f"{kind} {chosen.name}"
    if settings.token:
        return Target(url, settings.token, source, "TRIGGERFISH_TOKEN")
    if chosen is not None:
        return Target(url, chosen.token, source, source)
    return Target(url, admin_token(settings), source, str(settings.token_path))


def local_url(settings: Settings) -> str:
    """Where the server of the data directory listens: a configured host or port, else
    the URL ``triggerfish up`` recorded there, else the default address."""
    if (settings.host, settings.port) == (_DEFAULTS.host, _DEFAULTS.port):
        with contextlib.suppress(OSError, IndexError):
            recorded = settings.server_url_path.read_text().split()[0]
            if recorded.startswith(("http://", "https://")):
                return recorded.rstrip("/")
    return settings.listen_url


def admin_token(settings: Settings) -> str:
    try:
        return settings.token_path.read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return ""
