"""CORS as a browser sees it: headless Chromium, on a page of another origin, uploads
to a presigned URL with ``fetch`` (which sends a preflight first), reads the exposed
``ETag``, and reads the object back; a page of an origin no rule allows is refused."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient

from support.browser import headless_chromium
from support.s3 import s3_client, s3_node
from support.server import Server

pytestmark = pytest.mark.e2e


UPLOAD = """async ([url, body]) => {
  try {
    const answer = await fetch(url, {
      method: "PUT", body, headers: {"Content-Type": "text/plain"},
    });
    return {status: answer.status, etag: answer.headers.get("ETag")};
  } catch (error) {
    return {error: String(error)};
  }
}"""

DOWNLOAD = """async (url) => {
  const answer = await fetch(url);
  return {status: answer.status, text: await answer.text()};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """A page server of another origin than Triggerfish's (localhost vs 127.0.0.1)."""

    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>app</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with s3_node(tmp_path_factory.mktemp("s3-cors-browser")) as server:
        yield server


@pytest.fixture(scope="module")
def s3(server: Server) -> BaseClient:
    return s3_client(server, signature_version="s3v4")


def test_a_browser_uploads_to_a_presigned_url_of_another_origin(
    s3: BaseClient, browser: Any, page_origin: str
) -> None:
    s3.create_bucket(Bucket="browser")
    s3.put_bucket_cors(
        Bucket="browser",
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": ["http://localhost:*"],
                    "AllowedMethods": ["PUT", "GET"],
                    "AllowedHeaders": ["content-type"],
                    "ExposeHeaders": ["ETag"],
                }
            ]
        },
    )
    params = {"Bucket": "browser", "Key": "note.txt", "ContentType": "text/plain"}
    put_url = s3.generate_presigned_url("put_object", Params=params)
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "browser", "Key": "note.txt"}
    )
    page = browser.new_page()
    try:
        page.goto(f"{page_origin}/")
        sent = page.evaluate(UPLOAD, [put_url, "written by a browser"])
        assert sent.get("status") == 200, sent
        stored = s3.head_object(Bucket="browser", Key="note.txt")
        assert sent["etag"] == stored["ETag"]
        assert stored["ContentType"] == "text/plain"
        got = page.evaluate(DOWNLOAD, get_url)
        assert got == {"status": 200, "text": "written by a browser"}
    finally:
        page.close()

    s3.put_bucket_cors(
        Bucket="browser",
        CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": ["https://elsewhere.org"], "AllowedMethods": ["PUT"]}]
        },
    )
    page = browser.new_page()
    try:
        page.goto(f"{page_origin}/")
        refused = page.evaluate(UPLOAD, [put_url, "not allowed"])
        assert "error" in refused, refused  # the browser refuses to send it
    finally:
        page.close()
    assert s3.get_object(Bucket="browser", Key="note.txt")["Body"].read() == b"written by a browser"
