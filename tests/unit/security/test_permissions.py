"""Permission matching, without a server: each action against the resources its pattern
names, listings, the scopes-and-resources form of the CLI and the API, the manifest's
``permissions:``, and the messages of a refusal."""

from __future__ import annotations

import pytest

from triggerfish.errors import ConfigError, PermissionDeniedError, ValidationError
from triggerfish.functions.manifest import parse_function_config
from triggerfish.functions.permissions import granted
from triggerfish.security.permissions import (
    ANY,
    DEPLOY,
    INVOKE,
    PUBLISH,
    READ,
    S3_READ,
    S3_WRITE,
    Permission,
    Policy,
    Principal,
    with_resources,
)


def allows(text: str, action: str, resource: str = ANY) -> bool:
    return Policy.parse([text]).allows(action, resource)


@pytest.mark.parametrize(
    ("permission", "action", "resource", "allowed"),
    [
        # admin: everything, Triggerfish's own topics included
        ("admin", PUBLISH, "_invoke.resize", True),
        ("admin", S3_WRITE, "photos", True),
        ("admin", READ, ANY, True),
        # read and deploy on everything
        ("read", READ, ANY, True),
        ("read", DEPLOY, "resize", False),
        ("deploy", DEPLOY, ANY, True),
        ("deploy", DEPLOY, "resize", True),
        # deploy on one function, or a pattern of them
        ("deploy:resize", DEPLOY, "resize", True),
        ("deploy:resize", DEPLOY, "resize-2", False),
        ("deploy:resize", DEPLOY, ANY, False),  # a topic or webhook change
        ("deploy:img-*", DEPLOY, "img-thumb", True),
        ("deploy:img-*", DEPLOY, "thumb", False),
        # publish, and Triggerfish's own topics
        ("publish", PUBLISH, "orders", True),
        ("publish", PUBLISH, "_invoke.billing", False),
        ("publish:*", PUBLISH, "_bucket.photos", False),
        ("publish:_invoke.resize", PUBLISH, "_invoke.resize", True),
        ("publish:orders", PUBLISH, "orders", True),
        ("publish:orders", PUBLISH, "orders-eu", False),
        ("publish:orders.*", PUBLISH, "orders.eu", True),
        ("publish:orders", INVOKE, "orders:live", False),
        # invoke, with and without a qualifier
        ("invoke", INVOKE, "resize:live", True),
        ("invoke:resize", INVOKE, "resize:live", True),
        ("invoke:resize", INVOKE, "resize:$LATEST", True),
        ("invoke:resize", INVOKE, "other:live", False),
        ("invoke:resize:live", INVOKE, "resize:live", True),
        ("invoke:resize:live", INVOKE, "resize:3", False),
        ("invoke:resize:live", INVOKE, "resize", True),  # unqualified is live
        ("invoke:*:live", INVOKE, "any:live", True),
        ("invoke:*:live", INVOKE, "any:canary", False),
        # buckets: a whole bucket, a prefix, a pattern
        ("s3:read:photos", S3_READ, "photos", True),
        ("s3:read:photos", S3_READ, "photos/2024/a.jpg", True),
        ("s3:read:photos", S3_READ, "photos-eu/a.jpg", False),
        ("s3:read:photos", S3_WRITE, "photos/a.jpg", False),
        ("s3:read:photos/in/*", S3_READ, "photos/in/a.jpg", True),
        ("s3:read:photos/in/*", S3_READ, "photos/in/deep/a.jpg", True),
        ("s3:read:photos/in/*", S3_READ, "photos/out/a.jpg", False),
        ("s3:read:photos/in/*", S3_READ, "photos", False),  # not the bucket itself
        ("s3:read:photos/*.jpg", S3_READ, "photos/x/y.jpg", True),
        ("s3:read:photos/*.jpg", S3_READ, "photos/y.png", False),
        ("s3:write:*", S3_WRITE, "anything/at/all", True),
        ("s3:write:tmp-*", S3_WRITE, "tmp-1", True),
        ("s3:write:tmp-*", S3_WRITE, "prod", False),
        ("s3:write:photos/a.jpg", S3_WRITE, "photos/a.jpg", True),
        ("s3:write:photos/a.jpg", S3_WRITE, "photos/a.jpgx", False),
    ],
)
def test_a_permission_covers_the_resources_of_its_pattern(
    permission: str, action: str, resource: str, allowed: bool
) -> None:
    assert allows(permission, action, resource) is allowed


def test_a_key_may_contain_the_wildcard_character_itself() -> None:
    assert allows("s3:read:b/a*", S3_READ, "b/a*b")
    assert not allows("s3:read:b/a", S3_READ, "b/a*")


@pytest.mark.parametrize(
    ("permission", "bucket", "prefix", "allowed"),
    [
        ("s3:read:photos", "photos", "", True),
        ("s3:read:photos/*", "photos", "", True),
        ("s3:read:photos/in/*", "photos", "in/", True),
        ("s3:read:photos/in/*", "photos", "in/2024/", True),
        ("s3:read:photos/in/*", "photos", "", False),  # would show other keys
        ("s3:read:photos/in/*", "photos", "i", False),
        ("s3:read:photos/*.jpg", "photos", "", False),  # names of other files
        ("s3:read:photos/a.jpg", "photos", "a.jpg", False),  # a.jpg2 would show
        ("s3:write:photos", "photos", "", False),
        ("s3:read:*", "any", "x/", True),
    ],
)
def test_a_listing_needs_a_pattern_covering_every_key_it_could_show(
    permission: str, bucket: str, prefix: str, allowed: bool
) -> None:
    assert Policy.parse([permission]).allows_listing(S3_READ, bucket, prefix) is allowed


def test_a_bucket_is_visible_to_any_permission_in_it() -> None:
    policy = Policy.parse(["s3:read:photos/in/*", "s3:write:thumbs", "publish"])
    assert policy.touches_bucket("photos")
    assert policy.touches_bucket("thumbs")
    assert not policy.touches_bucket("private")
    assert Policy.parse(["admin"]).touches_bucket("private")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("superuser", "unknown action"),
        ("read:functions", "'read' applies to everything and takes no resource"),
        ("admin:x", "'admin' applies to everything"),
        ("publish:a b", "expected a topic name"),
        ("deploy:Resize", "expected a function name"),
        ("invoke:resize:", "expected a function name"),
        ("s3:read:Photos", "expected a bucket name"),
        ("s3:write:photos/", "expected a bucket name"),
    ],
)
def test_bad_permissions_are_refused_saying_why(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Permission.parse(text)


def test_permissions_read_back_as_written() -> None:
    texts = ["admin", "publish:orders", "invoke:resize:live", "s3:read:photos/in/*", "read"]
    assert [str(Permission.parse(text)) for text in texts] == texts
    assert Permission.parse("s3:write:*") == Permission("s3:write")


def test_scopes_take_the_resources_of_their_kind() -> None:
    made = with_resources(
        ["publish", "invoke", "s3:read", "read"],
        topics=["orders", "returns"],
        functions=["resize:live"],
        buckets=["photos/in/*"],
    )
    assert [str(p) for p in made] == [
        "publish:orders",
        "publish:returns",
        "invoke:resize:live",
        "s3:read:photos/in/*",
        "read",
    ]
    # A scope with its own resource keeps it; one with none of its kind gets everything.
    assert [str(p) for p in with_resources(["deploy:resize", "invoke"])] == [
        "deploy:resize",
        "invoke",
    ]


def test_resources_that_no_scope_takes_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"topics were given \(orders\) but no scope"):
        with_resources(["invoke"], topics=["orders"])
    with pytest.raises(ValidationError, match="at least one scope"):
        with_resources([])


def test_a_refusal_names_the_permission_missing_and_where_to_get_it() -> None:
    token = Principal("token", "abc", "ci", Policy.parse(["publish:orders", "read"]))
    token.require(PUBLISH, "orders")
    with pytest.raises(PermissionDeniedError) as caught:
        token.require(PUBLISH, "payments")
    assert str(caught.value) == (
        "API token 'ci' lacks 'publish' on topic 'payments': its 'publish' permission "
        "covers only orders; use a token issued with 'publish:payments' or the 'admin' scope"
    )
    with pytest.raises(PermissionDeniedError, match=r"lacks the 'invoke' scope \(it has: "):
        token.require(INVOKE, "resize:live")
    function_key = Principal("key", "TFX", "function f", Policy([]), function="thumbs")
    with pytest.raises(PermissionDeniedError) as denied:
        function_key.require(S3_READ, "photos/a.jpg")
    assert str(denied.value) == (
        "the access key of function 'thumbs' (TFX) lacks the 's3:read' scope (it has: none); "
        "grant it under 'permissions:' in the manifest of 'thumbs'"
    )


# -- the manifest's permissions: ----------------------------------------------------------


def test_a_function_is_granted_its_manifest_s_permissions_and_nothing_else() -> None:
    config = parse_function_config(
        "thumbs",
        {
            "handler": "main.handler",
            "permissions": {
                "buckets": {"read": ["photos/in/*"], "write": ["thumbs"]},
                "publish": ["resized"],
                "invoke": ["notify:live"],
                "deploy": ["thumbs"],
            },
        },
    )
    assert [str(p) for p in granted(config)] == [
        "s3:read:photos/in/*",
        "s3:write:thumbs",
        "publish:resized",
        "invoke:notify:live",
        "deploy:thumbs",
    ]
    bare = parse_function_config("bare", {"handler": "main.handler"})
    assert granted(bare) == []


def test_a_bucket_trigger_lets_the_function_read_what_it_is_told_about() -> None:
    config = parse_function_config(
        "thumbs",
        {
            "handler": "main.handler",
            "triggers": [
                {"bucket": {"name": "uploads", "prefix": "photos/", "suffix": ".jpg"}},
                {"bucket": "inbox"},
            ],
        },
    )
    policy = Policy(granted(config))
    assert policy.allows(S3_READ, "uploads/photos/cat.jpg")
    assert not policy.allows(S3_READ, "uploads/photos/cat.png")
    assert not policy.allows(S3_WRITE, "uploads/photos/cat.jpg")
    assert policy.allows(S3_READ, "inbox/anything")


def test_permissions_are_not_part_of_the_version() -> None:
    plain = parse_function_config("f", {"handler": "main.handler"})
    granting = parse_function_config(
        "f", {"handler": "main.handler", "permissions": {"publish": ["orders"]}}
    )
    assert plain.version_config() == granting.version_config()


@pytest.mark.parametrize(
    ("permissions", "message"),
    [
        (
            {"buckets": {"read": ["photos", "Bad Bucket"]}},
            "permissions.buckets.read[1]: expected a bucket name or a pattern such as "
            "photos/in/* ('*' is the only wildcard), got \"Bad Bucket\"",
        ),
        ({"publish": ["orders", "no spaces"]}, "permissions.publish[1]: expected a topic"),
        ({"invoke": ["resize:"]}, "permissions.invoke[0]: expected a function name"),
        ({"buckets": {"delete": ["x"]}}, "permissions.buckets.delete: unknown key"),
        ({"admin": True}, "permissions.admin: unknown key; expected one of: buckets"),
        ({"publish": "orders"}, "permissions.publish: expected a list of topics"),
    ],
)
def test_a_bad_manifest_entry_is_named_by_its_key_path(
    permissions: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_function_config(
            "thumbs",
            {"handler": "main.handler", "permissions": permissions},
            origin="triggerfish.yaml: functions.thumbs",
        )
    assert message in str(caught.value)
    assert str(caught.value).startswith("triggerfish.yaml: functions.thumbs: permissions.")
