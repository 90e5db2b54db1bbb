"""References to secrets as the manifest, the store and the APIs see them: the reference
is kept and shown, a value never is, and a malformed reference is refused with the
key path and what is expected."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from triggerfish.api.lambda_.shapes import configuration
from triggerfish.errors import ConfigError
from triggerfish.functions.manifest import parse_function_config, parse_manifest
from triggerfish.functions.references import SealedSecret, SecretRef, secret_names
from triggerfish.functions.webhooks import WebhookConfig
from triggerfish.sources.webhooks import public_json
from triggerfish.store.records import VersionRecord

FILE = Path("triggerfish.yaml")


def manifest(environment: str) -> str:
    return f"functions:\n  api:\n    handler: main.handler\n    environment: {environment}\n"


def test_an_environment_keeps_references_apart_from_values() -> None:
    parsed = parse_manifest(
        manifest("{STAGE: prod, PORT: 80, DB_PASSWORD: {secret: db-password}}"), FILE
    )
    config = parsed.functions["api"]
    assert config.environment == {
        "STAGE": "prod",
        "PORT": "80",
        "DB_PASSWORD": SecretRef(secret="db-password"),
    }
    assert secret_names(config.environment) == {"DB_PASSWORD": "db-password"}
    # What a version stores (and what GET /v1/functions/{name} shows) is the reference.
    stored = config.version_config()["environment"]
    assert stored["DB_PASSWORD"] == {"secret": "db-password"}
    # ... and it reads back as the same settings.
    assert parse_function_config("api", config.version_config()).environment == config.environment


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            "{DB: {secret: DB-Password}}",
            "functions.api.environment.DB: expected {secret: NAME} with a secret name of 1 "
            "to 128 characters",
        ),
        ("{DB: {secret: db, extra: 1}}", "with only the key 'secret'"),
        ("{DB: {name: db}}", "with only the key 'secret'"),
        ("{DB: [1]}", "expected a string (or a number or boolean), or {secret: NAME}"),
    ],
)
def test_malformed_references_name_the_key(environment: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_manifest(manifest(environment), FILE)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ({"secret": "hook-key"}, {"secret": "hook-key"}),
        ("env:HOOK_KEY", "env:HOOK_KEY"),
        ("the-literal-secret", "********"),
        ({"sealed": "c2VhbGVk"}, "********"),
        (None, None),
    ],
)
def test_the_webhook_api_shows_references_and_hides_secrets(secret: object, shown: object) -> None:
    config = WebhookConfig.model_validate({"topic": "hooks", "secret": secret})
    body = public_json("hook", config)
    assert body["secret"] == shown
    assert body["signed"] is (secret is not None)
    assert "the-literal-secret" not in str(body)
    assert "c2VhbGVk" not in str(body)


def test_webhook_secret_forms() -> None:
    def parsed(secret: object) -> WebhookConfig:
        return WebhookConfig.model_validate({"topic": "hooks", "secret": secret})

    assert parsed({"secret": "hook-key"}).secret_name == "hook-key"
    assert parsed("env:HOOK_KEY").variable_name == "HOOK_KEY"
    assert parsed("literal").literal_secret == "literal"
    assert parsed({"sealed": "abc"}).secret == SealedSecret(sealed="abc")
    for config in (parsed({"secret": "hook-key"}), parsed("env:X"), parsed({"sealed": "a"})):
        assert config.literal_secret is None


def test_lambda_shows_a_reference_where_a_value_would_be() -> None:
    digest = hashlib.sha256(b"code").hexdigest()
    version = VersionRecord(
        function="api",
        version=digest[:12],
        number=1,
        digest=digest,
        config={
            "handler": "main.handler",
            "environment": {"STAGE": "prod", "DB_PASSWORD": {"secret": "db-password"}},
        },
        created_at=1_700_000_000.0,
    )
    shape = configuration(version, code_size=1)
    assert shape["Environment"] == {
        "Variables": {"STAGE": "prod", "DB_PASSWORD": "secret:db-password"}
    }
