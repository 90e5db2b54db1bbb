"""A stand-in for a tracing backend on another machine: an OTLP/HTTP endpoint that
reads each export and answers 200, decoding nothing, so that what it costs this
machine is small beside what the exporting node spends.

    python -m bench.otlp_sink [--port 4318] &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python -m bench --only triggerfish

It prints how many exports and bytes it took when stopped (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

taken = {"exports": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        taken["exports"] += 1
        taken["bytes"] += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Sink)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print(f"{taken['exports']} exports, {taken['bytes']:,} bytes", flush=True)


if __name__ == "__main__":
    main()
