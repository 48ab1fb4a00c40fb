"""A recording stand-in for the few Grafana HTTP endpoints provisioning uses.

No Grafana server is installable here (no registry ships one), so this keeps
objects in memory the way Grafana's API stores them (adding ids, versions and
defaults of its own) and counts every write; `test_live_grafana.py` runs the
same flow against a real Grafana when GRAFANA_URL is set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class GrafanaStub:
    """What the stand-in holds, and every write it received."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.writes: list[str] = []
        self.url = ""


def _handler(stub: GrafanaStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length", 0))
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:
            key = self.path.split("?")[0]
            if key in stub.objects:
                self._send(200, stub.objects[key])
            else:
                self._send(404, {"message": "not found"})

        def _write(self) -> None:
            body, path = self._body(), self.path.split("?")[0]
            stub.writes.append(f"{self.command} {path}")
            if path == "/api/datasources":
                key = f"/api/datasources/uid/{body['uid']}"
                stored = {**body, "id": 1, "orgId": 1, "readOnly": False}
                stored.pop("secureJsonData", None)
            elif path.startswith("/api/datasources/uid/"):
                key, stored = path, {**body, "id": 1}
                stored.pop("secureJsonData", None)
            elif path == "/api/folders":
                key, stored = f"/api/folders/{body['uid']}", {**body, "id": 7}
            elif path == "/api/dashboards/db":
                dashboard = {**body["dashboard"], "id": 3, "version": 2}
                key = f"/api/dashboards/uid/{dashboard['uid']}"
                stored = {
                    "dashboard": dashboard,
                    "meta": {"folderUid": body.get("folderUid")},
                }
            else:  # a rule group: Grafana adds ids and defaults to every rule
                key = path
                rules = [
                    {**r, "id": i, "orgID": 1, "updated": "now", "provenance": "api"}
                    for i, r in enumerate(body["rules"])
                ]
                stored = {**body, "rules": rules}
            stub.objects[key] = stored
            self._send(200, {"status": "success", "uid": body.get("uid")})

        def do_POST(self) -> None:
            self._write()

        def do_PUT(self) -> None:
            self._write()

    return Handler


@contextmanager
def grafana_stub() -> Iterator[GrafanaStub]:
    """A running stand-in on a free port of 127.0.0.1."""
    stub = GrafanaStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
