"""schemathesis against the gateway's own OpenAPI: it never answers 500, nor 503.

The broker and the database are up and the gateway is not draining, so a
503 here could only be an unexpected error dressed as "send again later"
(the gateway's catch-all answer): it fails the test like a 500.

Bounded for CI: a fixed number of generated requests per operation, valid
and invalid bodies alike, with a token whose grants cover some of them.
Requests go through httpx: schemathesis' own `requests` transport fails on
the `urllib3-future` that grafana-client's niquests installs over urllib3.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.gateway.conftest import RunningGateway


def _send(
    client: httpx.Client,
    case: schemathesis.Case,
    base_url: str,
    headers: dict[str, str],
) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    body = kwargs.get("data")
    return client.request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs["headers"],
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        content=body.encode() if isinstance(body, str) else body,
    )


#: (path, method, generation mode, examples); health has no input to negate.
_RUNS = (
    ("/v1/events", "POST", GenerationMode.POSITIVE, 60),
    ("/v1/events", "POST", GenerationMode.NEGATIVE, 60),
    ("/v1/health", "GET", GenerationMode.POSITIVE, 5),
)


def test_the_gateway_never_answers_500(
    gateway: RunningGateway, token: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {token('frederiksberg', '147', 'movia')}"}
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    statuses: list[int] = []
    client = httpx.Client(timeout=30)
    for path, method, mode, examples in _RUNS:
        strategy = schema[path][method].as_strategy(generation_mode=mode)

        @given(case=strategy)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            response = _send(client, case, gateway.url, headers)
            statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        call()
    server_errors = sorted({status for status in statuses if status >= 500})
    print(f"schemathesis: {len(statuses)} requests, statuses {sorted(set(statuses))}")
    assert server_errors == [], f"5xx outside a drain: {server_errors}"
    assert 422 in statuses
