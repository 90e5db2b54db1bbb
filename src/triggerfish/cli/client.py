"""The CLI's HTTP client: finds the server and its token, and turns problems into
one-line errors with exit codes that mean something."""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass
from typing import Any

import httpx

from triggerfish.cli.contexts import Target, resolve
from triggerfish.cli.root import selection
from triggerfish.config import Settings, load_settings
from triggerfish.errors import ConfigError


class CliError(Exception):
    """A failure to report on one line, with the process exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# Exit codes: 0 success; 1 the function failed / no match; 2 bad input; 3 not found;
# 4 auth; 5 server unreachable; 6 throttled; 7 conflict; 8 server error.
EXIT_FOR_STATUS = {400: 2, 401: 4, 403: 4, 404: 3, 409: 7, 413: 2, 422: 2, 429: 6}
EXIT_UNREACHABLE = 5


def find_target(settings: Settings) -> Target:
    """The server and token for this command (the order is in ``cli.contexts``); a data
    directory other than the default (``--data-dir``, ``TRIGGERFISH_DATA_DIR``) asks for
    the local server of that folder over any saved context."""
    return resolve(
        settings,
        profile=selection.profile or settings.profile,
        data_dir_given=settings.data_dir != Settings().data_dir,
    )


class Client:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        target: Target | None = None,
        timeout: float = 60.0,
    ) -> None:
        if target is None:
            target = find_target(settings or load_settings())
        self.target = target
        self.url = target.url
        self._token = target.token
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(
                f"Triggerfish is not running at {self.url} ({self.target.source}): start it "
                "with `triggerfish up`, or choose another server (`triggerfish context show` "
                "says how commands find theirs)",
                EXIT_UNREACHABLE,
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"{self.url} did not answer in time", EXIT_UNREACHABLE) from None
        if response.status_code >= 400:
            raise CliError(problem_text(response), EXIT_FOR_STATUS.get(response.status_code, 8))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None


def problem_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:500]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if response.status_code == 401 and "token" not in str(detail):
        detail = f"{detail} (log in with `triggerfish login URL`, or set TRIGGERFISH_TOKEN)"
    return str(detail or body)


@dataclass(frozen=True, slots=True)
class Reach:
    """What a command needs to reach a given server from another terminal in the same
    folder and environment: an environment variable before it, options after it."""

    prefix: str = ""
    suffix: str = ""

    def __call__(self, command: str) -> str:
        return f"{self.prefix}{command}{self.suffix}"


def reach(settings: Settings) -> Reach:
    """How other commands reach the server ``triggerfish up`` runs with ``settings``: as
    they are when nothing (a saved context, ``TRIGGERFISH_URL``) points elsewhere, else
    with ``--data-dir``, else with ``TRIGGERFISH_URL`` too. ``up`` records its URL in the
    data directory (``Settings.server_url_path``), so ``--data-dir`` finds its port."""
    here = settings.listen_url
    plain = load_settings()
    profile = selection.profile or plain.profile
    if plain.data_dir.resolve() == settings.data_dir.resolve():
        given = plain.data_dir != Settings().data_dir
        with contextlib.suppress(ConfigError):  # an unreadable contexts file: name the folder
            if resolve(plain, profile=profile, data_dir_given=given).url == here:
                return Reach()
    folder = settings.data_dir.resolve()
    suffix = f" --data-dir {shlex.quote(str(folder))}"
    named = load_settings({"data_dir": folder})
    if resolve(named, profile=profile, data_dir_given=True).url == here:
        return Reach(suffix=suffix)
    return Reach(prefix=f"TRIGGERFISH_URL={shlex.quote(here)} ", suffix=suffix)
