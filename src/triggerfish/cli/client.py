"""The CLI's HTTP client: finds the server and its token, and turns problems into
one-line errors with exit codes that mean something."""

from __future__ import annotations

from typing import Any

import httpx

from triggerfish.config import Settings


class CliError(Exception):
    """A failure to report on one line, with the process exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# Exit codes: 0 success; 1 the function failed / no match; 2 bad input; 3 not found;
# 4 auth; 5 server unreachable; 6 throttled; 7 conflict; 8 server error.
EXIT_FOR_STATUS = {400: 2, 401: 4, 403: 4, 404: 3, 409: 7, 413: 2, 422: 2, 429: 6}
EXIT_UNREACHABLE = 5


def find_token(settings: Settings) -> str:
    if settings.token:
        return settings.token
    try:
        return settings.token_path.read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


class Client:
    def __init__(self, settings: Settings, *, timeout: float = 60.0) -> None:
        self.url = settings.resolved_url
        self._token = find_token(settings)
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
                f"Triggerfish is not running at {self.url}: start it with `triggerfish up`, "
                "or point TRIGGERFISH_URL at a running server",
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
        detail = f"{detail} (set TRIGGERFISH_TOKEN)"
    return str(detail or body)
