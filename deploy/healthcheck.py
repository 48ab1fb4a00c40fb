"""Container health check of a Klimapuls service: exit 0 when it can work.

faust's web server is off in the services, so "healthy" means: the settings
load, the database answers `SELECT 1`, and a broker of
KAFKA_BOOTSTRAP_SERVERS accepts a TCP connection. A worker that crashes
exits and is restarted by its orchestrator; this check catches the case
where it runs but cannot reach what it needs.
"""

from __future__ import annotations

import socket
import sys

import psycopg

from klimapuls.settings import Settings


def main() -> int:
    """0 healthy, 1 not (with the reason on stderr)."""
    settings = Settings()
    try:
        dsn = settings.require_database_url().replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        host, _, port = settings.require_bootstrap_servers().split(",")[0].rpartition(":")
        socket.create_connection((host, int(port)), timeout=5).close()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
