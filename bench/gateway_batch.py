"""Benchmark: events per second through the HTTP gateway, batch POST vs one by one.

Starts an embedded broker and PostgreSQL, the gateway on uvicorn (in this
process, one worker), and POSTs the CO2 demo accounts: first one event per
request (the baseline), then in batches, each answered 202 only after the
broker's acks. Prints events/s and the ratio to the baseline.

    python bench/gateway_batch.py [--events N] [--batch N]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from klimapuls.gateway import create_app
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.simulator import co2_demo
from klimapuls.stack import EmbeddedBroker, EmbeddedPostgres, ensure_topics
from klimapuls.stack.broker import free_port
from klimapuls.storage import grants, prepare_database
from klimapuls.storage.db import create_db_engine, in_transaction


def _token(url: str) -> str:
    engine = create_db_engine(url)

    def work(conn: Any) -> str:
        grants.grant(conn, "bench", ["*"], granted_by="bench")
        return grants.create_token(conn, "bench", datetime.now(UTC))[1]

    try:
        return in_transaction(engine, work)
    finally:
        engine.dispose()


def _post_all(url: str, token: str, bodies: list[Any]) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=60, headers=headers) as client:
        started = time.perf_counter()
        for body in bodies:
            answer = client.post(f"{url}/v1/events", json=body)
            assert answer.status_code == 202, answer.text
        return time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    events = [{**e, "producer": "bench"} for e in co2_demo().events[: args.events]]
    with tempfile.TemporaryDirectory() as folder, EmbeddedBroker() as broker:
        database = EmbeddedPostgres(Path(folder) / "pg")
        url = database.start()
        prepare_database(url)
        settings = Settings(
            database_url=SecretStr(url),
            kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
            gateway_rate_limit="100000/second",
            gateway_max_body_bytes=16 * 1024 * 1024,
            data_dir=Path(folder) / "klimapuls",
        )
        ensure_topics(settings)
        port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        token = _token(url)
        baseline_n = min(300, len(events))
        single = _post_all(base, token, events[:baseline_n])
        batches = [
            events[i : i + args.batch] for i in range(0, len(events), args.batch)
        ]
        batched = _post_all(base, token, batches)
        server.should_exit = True
        thread.join(20)
        database.stop()
    one, many = baseline_n / single, len(events) / batched
    print(f"one event per request: {one:,.0f} events/s ({baseline_n} events)")
    print(
        f"batches of {args.batch}: {many:,.0f} events/s ({len(events)} events), "
        f"{many / one:.0f}x the one-by-one baseline"
    )


if __name__ == "__main__":
    main()
