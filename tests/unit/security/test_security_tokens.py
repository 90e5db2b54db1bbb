from __future__ import annotations

import os
import re
import stat
import threading
from dataclasses import astuple
from pathlib import Path

import pytest

from triggerfish.errors import AuthError, ConfigError, ValidationError
from triggerfish.security.tokens import (
    ADMIN,
    DEPLOY,
    INVOKE,
    PUBLISH,
    READ,
    AdminTokenFile,
    TokenRecord,
    bearer_token,
    issue_token,
    record_for_token,
    require,
    revoke,
    verify,
    verify_async,
)

TOKEN_FORMAT = re.compile(r"tfk_[a-z0-9]{12}_[A-Za-z0-9_-]{32}")


class MemoryTokenStore:
    def __init__(self, *records: TokenRecord) -> None:
        self.records = {record.id: record for record in records}

    def lookup(self, token_id: str) -> TokenRecord | None:
        return self.records.get(token_id)

    async def lookup_async(self, token_id: str) -> TokenRecord | None:
        return self.records.get(token_id)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- issuing ------------------------------------------------------------------------------


def test_issued_tokens_have_the_documented_format_and_differ() -> None:
    tokens = [issue_token("ci", [PUBLISH])[0] for _ in range(200)]
    assert all(TOKEN_FORMAT.fullmatch(token) for token in tokens)
    assert len(set(tokens)) == 200


def test_the_record_keeps_no_secret() -> None:
    token, record = issue_token("deploy bot", [DEPLOY, READ, DEPLOY])
    secret = token[len("tfk_") + 13 :]
    assert record.id == token[4:16]
    assert record.name == "deploy bot"
    assert record.scopes == (DEPLOY, READ)
    assert re.fullmatch(r"[0-9a-f]{64}", record.secret_hash)
    assert all(secret not in str(field) for field in astuple(record))
    assert secret not in repr(record)
    assert not record.revoked


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("ci", ["publish", "superuser"], "unknown scope 'superuser'"),
        ("ci", [], "at least one scope"),
        ("  ", [READ], "needs a name"),
    ],
)
def test_issuing_refuses_bad_input(name: str, scopes: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        issue_token(name, scopes)


# -- verifying ----------------------------------------------------------------------------


def test_a_valid_token_verifies_to_its_record() -> None:
    token, record = issue_token("ci", [PUBLISH])
    store = MemoryTokenStore(record)
    assert verify(token, store.lookup) == record
    assert verify(f"  {token}\n", store.lookup) == record


@pytest.mark.parametrize("token", [None, "", "   "])
def test_a_missing_token_says_how_to_send_one(token: str | None) -> None:
    with pytest.raises(AuthError, match=r"missing API token.*Authorization: Bearer"):
        verify(token, MemoryTokenStore().lookup)


@pytest.mark.parametrize(
    "token",
    [
        "hello",
        "tfk_short_secret",
        "tfk_ABCDEFGHIJKL_" + "a" * 32,  # capitals in the id
        "tfk_abcdefghijkl_" + "a" * 31,
        "tfk_abcdefghijkl_" + "a" * 33,
        "tfk_abcdefghijkl_" + "a" * 31 + "!",
        "xyz_abcdefghijkl_" + "a" * 32,
    ],
)
def test_a_malformed_token_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(AuthError, match="malformed API token") as info:
        verify(token, MemoryTokenStore().lookup)
    assert token not in str(info.value)


def test_an_unknown_token_is_refused() -> None:
    token, _ = issue_token("ci", [PUBLISH])
    with pytest.raises(AuthError, match="unknown API token") as info:
        verify(token, MemoryTokenStore().lookup)
    assert token[17:] not in str(info.value)


def test_a_wrong_secret_for_a_known_id_reads_as_unknown() -> None:
    token, record = issue_token("ci", [PUBLISH])
    forged = token[:17] + ("A" if token[17] != "A" else "B") + token[18:]
    with pytest.raises(AuthError, match="unknown API token"):
        verify(forged, MemoryTokenStore(record).lookup)


def test_a_revoked_token_says_so() -> None:
    token, record = issue_token("old laptop", [ADMIN])
    store = MemoryTokenStore(revoke(record))
    with pytest.raises(AuthError, match=r"'old laptop'.*has been revoked"):
        verify(token, store.lookup)


async def test_verify_async_takes_a_coroutine_lookup() -> None:
    token, record = issue_token("ci", [PUBLISH])
    assert await verify_async(token, MemoryTokenStore(record).lookup_async) == record
    with pytest.raises(AuthError, match="has been revoked"):
        await verify_async(token, MemoryTokenStore(revoke(record)).lookup_async)
    with pytest.raises(AuthError, match="missing API token"):
        await verify_async(None, MemoryTokenStore(record).lookup_async)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer tfk_abc", "tfk_abc"),
        ("bearer   tfk_abc ", "tfk_abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_reads_the_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# -- scopes -------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", [ADMIN, PUBLISH, INVOKE, DEPLOY, READ])
def test_admin_may_do_everything(scope: str) -> None:
    _, record = issue_token("root", [ADMIN])
    require(record, scope)


def test_a_scope_grants_only_itself() -> None:
    _, record = issue_token("sensor", [PUBLISH, READ])
    require(record, PUBLISH)
    require(record, READ)
    with pytest.raises(
        AuthError, match="'sensor' lacks the 'deploy' scope \\(it has: publish, read\\)"
    ):
        require(record, DEPLOY)
    with pytest.raises(AuthError, match="lacks the 'admin' scope"):
        require(record, ADMIN)


# -- the admin token file -----------------------------------------------------------------


def test_first_start_creates_an_admin_token_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "admin.token"
    token, created = AdminTokenFile(path).ensure()
    assert created
    assert TOKEN_FORMAT.fullmatch(token)
    assert path.read_text() == token + "\n"
    assert _mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["admin.token"]  # no temporary left


def test_later_starts_read_the_same_token_back(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    token, _ = AdminTokenFile(path).ensure()
    again, created = AdminTokenFile(path).ensure()
    assert (again, created) == (token, False)
    record = record_for_token(token, name="admin", scopes=[ADMIN])
    assert verify(again, MemoryTokenStore(record).lookup).scopes == (ADMIN,)


def test_the_file_mode_does_not_depend_on_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        AdminTokenFile(tmp_path / "admin.token").ensure()
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "admin.token") == 0o600


def test_a_loosened_file_is_closed_again(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    AdminTokenFile(path).ensure()
    path.chmod(0o644)
    AdminTokenFile(path).ensure()
    assert _mode(path) == 0o600


def test_a_file_without_a_token_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    path.write_text("not a token\n")
    with pytest.raises(ConfigError, match=r"does not hold a Triggerfish token.*delete it"):
        AdminTokenFile(path).ensure()


def test_nodes_starting_together_share_one_admin_token(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    barrier = threading.Barrier(8)
    results: list[tuple[str, bool]] = []

    def start() -> None:
        barrier.wait()
        results.append(AdminTokenFile(path).ensure())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({token for token, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert path.read_text().strip() == results[0][0]
    assert [p.name for p in tmp_path.iterdir()] == ["admin.token"]
