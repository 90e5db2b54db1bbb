"""``cors:`` of an HTTP route: the model's defaults and checks, and the CORS of SAM
templates and serverless.yml services carried out as it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from triggerfish.functions.cors import COMMON_HEADERS, CorsOptions
from triggerfish.functions.templates.common import TemplateResult, load_template
from triggerfish.functions.triggers import HttpOptions


def cors_of(value: object) -> CorsOptions | None:
    return HttpOptions.model_validate({"route": "GET /items", "cors": value}).cors


def test_true_allows_any_origin_with_the_common_headers_and_false_is_none() -> None:
    cors = cors_of(True)
    assert cors is not None
    assert cors.allow_origins == ["*"]
    assert cors.allow_methods is None  # the route's own
    assert cors.allow_headers == list(COMMON_HEADERS)
    assert not cors.allow_credentials
    assert cors_of(False) is None
    assert HttpOptions.model_validate({"route": "GET /items"}).cors is None


def test_a_mapping_is_kept_normalised_and_survives_a_round_trip() -> None:
    cors = cors_of(
        {
            "allow_origins": ["https://shop.example.com", "https://*.example.org"],
            "allow_methods": ["get", "post"],
            "allow_headers": ["Content-Type", "X-Api-Key"],
            "expose_headers": ["X-Order"],
            "max_age": 600,
            "allow_credentials": True,
        }
    )
    assert cors is not None
    assert cors.allow_methods == ["GET", "POST"]
    assert cors.allow_headers == ["content-type", "x-api-key"]
    stored = HttpOptions.model_validate({"route": "GET /items", "cors": cors.model_dump()})
    assert stored.cors == cors


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        ({"allow_credentials": True}, "allow_credentials: true needs the origins named"),
        ({"allow_origins": ["https://a.example/path"]}, "no path"),
        ({"allow_origins": ["shop.example.com"]}, "a scheme and a host"),
        ({"allow_origins": []}, "at least one origin"),
        ({"allow_methods": ["FETCH"]}, "'FETCH' is not one"),
        ({"allow_headers": ["content type"]}, "header names"),
        ({"max_age": 100000}, "less than or equal to 86400"),
        ({"allow_origin": "*"}, "allow_origin"),
    ],
)
def test_mistakes_are_refused_with_what_to_write(cors: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        cors_of(cors)


# -- AWS SAM -----------------------------------------------------------------------


def sam(tmp_path: Path, body: str) -> TemplateResult:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    text = "Transform: AWS::Serverless-2016-10-31\n" + textwrap.dedent(body)
    (tmp_path / "template.yaml").write_text(text)
    return load_template(tmp_path / "template.yaml", None)


def route_cors(result: TemplateResult, function: str, index: int = 0) -> CorsOptions | None:
    http = result.manifest.functions[function].triggers[index].http
    assert http is not None
    return http.cors


SAM_APIS = """\
Globals:
  Api:
    Cors: "'*'"
  HttpApi:
    CorsConfiguration:
      AllowOrigins: ["https://app.example.com"]
      AllowMethods: [GET, POST]
      AllowHeaders: [content-type, x-api-key]
      ExposeHeaders: [x-order]
      MaxAge: 300
      AllowCredentials: true
Resources:
  ShopApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      Cors:
        AllowOrigin: "'https://shop.example.com'"
        AllowMethods: "'GET,PUT,OPTIONS'"
        AllowHeaders: "'Content-Type,X-Amz-Date'"
        MaxAge: "'600'"
        AllowCredentials: true
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.11
      Events:
        Implicit:
          Type: Api
          Properties: {Path: /items, Method: get}
        Named:
          Type: Api
          Properties: {Path: /shop, Method: put, RestApiId: !Ref ShopApi}
        Http:
          Type: HttpApi
          Properties: {Path: /orders, Method: post}
"""


def test_sam_api_cors_from_globals_and_from_the_api_resource(tmp_path: Path) -> None:
    result = sam(tmp_path, SAM_APIS)
    assert route_cors(result, "fn", 0) == CorsOptions(allow_origins=["*"])
    assert route_cors(result, "fn", 1) == CorsOptions(
        allow_origins=["https://shop.example.com"],
        allow_methods=["GET", "PUT", "OPTIONS"],
        allow_headers=["content-type", "x-amz-date"],
        max_age=600,
        allow_credentials=True,
    )
    assert route_cors(result, "fn", 2) == CorsOptions(
        allow_origins=["https://app.example.com"],
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-api-key"],
        expose_headers=["x-order"],
        max_age=300,
        allow_credentials=True,
    )
    assert not [u for u in result.unsupported if "Cors" in u.where]


def test_sam_http_api_cors_true_and_credentials_for_any_origin_reported(tmp_path: Path) -> None:
    result = sam(
        tmp_path,
        """\
        Globals:
          Api:
            Cors: {AllowOrigin: "'*'", AllowCredentials: true}
        Resources:
          Orders:
            Type: AWS::Serverless::HttpApi
            Properties:
              CorsConfiguration: true
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Runtime: python3.11
              Events:
                Http:
                  Type: HttpApi
                  Properties: {Path: /orders, Method: get, ApiId: !Ref Orders}
                Plain:
                  Type: HttpApi
                  Properties: {Path: /plain, Method: get}
                Rest:
                  Type: Api
                  Properties: {Path: /rest, Method: get}
        """,
    )
    assert route_cors(result, "fn", 0) == CorsOptions()
    assert route_cors(result, "fn", 1) is None
    rest = route_cors(result, "fn", 2)
    assert rest is not None
    assert rest.allow_origins == ["*"]
    assert not rest.allow_credentials
    [reported] = [u for u in result.unsupported if "Cors" in u.where]
    assert reported.where == "Globals.Api.Cors.AllowCredentials"
    assert "browsers refuse credentials" in reported.reason


# -- serverless.yml ----------------------------------------------------------------


def serverless(tmp_path: Path, text: str) -> TemplateResult:
    (tmp_path / "handler.py").write_text("def hello(event, context):\n    return event\n")
    (tmp_path / "serverless.yml").write_text(textwrap.dedent(text))
    return load_template(tmp_path / "serverless.yml", None)


def test_serverless_http_cors_and_provider_http_api_cors(tmp_path: Path) -> None:
    result = serverless(
        tmp_path,
        """\
        service: shop
        provider:
          name: aws
          runtime: python3.11
          httpApi:
            cors:
              allowedOrigins: [https://app.example.com]
              allowedHeaders: [Content-Type]
              exposedResponseHeaders: [X-Order]
              allowCredentials: true
              maxAge: 120
        functions:
          hello:
            handler: handler.hello
            events:
              - http: {path: items, method: get, cors: true}
              - http:
                  path: shop
                  method: post
                  cors: {origins: [https://shop.example.com], headers: [X-Api-Key], maxAge: 60}
              - http: {path: plain, method: get}
              - httpApi: 'GET /orders'
        """,
    )
    [function] = result.manifest.functions
    default = route_cors(result, function, 0)
    assert default is not None
    assert default.allow_origins == ["*"]
    assert "x-amz-date" in default.allow_headers
    assert route_cors(result, function, 1) == CorsOptions(
        allow_origins=["https://shop.example.com"], allow_headers=["x-api-key"], max_age=60
    )
    assert route_cors(result, function, 2) is None
    assert route_cors(result, function, 3) == CorsOptions(
        allow_origins=["https://app.example.com"],
        allow_headers=["content-type"],
        expose_headers=["x-order"],
        allow_credentials=True,
        max_age=120,
    )
    assert not [u for u in result.unsupported if "cors" in u.where or "httpApi" in u.where]


def test_serverless_other_http_api_settings_are_still_reported(tmp_path: Path) -> None:
    result = serverless(
        tmp_path,
        """\
        service: shop
        provider:
          name: aws
          runtime: python3.11
          httpApi: {cors: true, authorizers: {}}
        functions:
          hello:
            handler: handler.hello
            events:
              - httpApi: 'GET /orders'
              - http: {path: a, method: get, cors: {origin: '*', allowCredentials: true}}
        """,
    )
    [function] = result.manifest.functions
    assert route_cors(result, function, 0) is not None
    lines = {u.where for u in result.unsupported}
    assert lines == {
        "provider.httpApi.authorizers",
        "functions.hello.events[1].cors.allowCredentials",
    }
