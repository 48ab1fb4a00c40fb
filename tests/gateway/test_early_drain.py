"""`up` may ask the gateway to drain (SIGUSR1) before it is ready (issue 10).

Ctrl-C right after `klimapuls up` started the services sends SIGUSR1 to a
gateway still importing its modules: it must not die of the signal's default
action, but start and answer 503 (draining) until it is stopped.
"""

from __future__ import annotations

import time

import httpx
import pytest

from klimapuls.settings import Settings
from klimapuls.stack.broker import free_port
from klimapuls.stack.children import describe_exit
from klimapuls.stack.runner import Stack


@pytest.mark.timeout(120)
def test_a_drain_signal_before_the_gateway_is_ready_does_not_kill_it(
    settings: Settings,
) -> None:
    port = free_port()
    stack = Stack(settings.model_copy(update={"gateway_port": port}))
    try:
        stack.start_services(["gateway"])
        assert stack.close_intake()  # at once: the gateway is still starting
        process = stack.processes["gateway"]
        deadline = time.monotonic() + 60
        answer = None
        while answer is None:
            code = process.poll()
            log = (stack.log_dir / "gateway.log").read_text(errors="replace")
            assert code is None, f"gateway {describe_exit(code)}:\n{log}"
            assert time.monotonic() < deadline, f"gateway never answered:\n{log}"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.status_code == 503
        assert answer.json()["error"] == "draining"
        assert process.poll() is None
    finally:
        stack.stop()
