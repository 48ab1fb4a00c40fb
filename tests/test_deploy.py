"""`deploy/` describes a real Kafka + PostgreSQL deployment of every service."""

from __future__ import annotations

from pathlib import Path

import yaml

from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack.runner import SERVICES

DEPLOY = Path(__file__).parent.parent / "deploy"


def _known_variables() -> set[str]:
    names = {"DATABASE_URL"}
    names |= {f"KAFKA_{f.upper()}" for f in KafkaSettings.model_fields}
    names |= {f"KLIMAPULS_{f.upper()}" for f in Settings.model_fields}
    return names


def test_compose_runs_every_service_against_real_kafka() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    for name in SERVICES:
        assert services[name]["command"] == ["python", "-m", f"klimapuls.{name}"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "tansu" not in text.split("never runs here")[1].lower()
    env = services["co2"]["environment"]
    assert set(env) <= _known_variables()


def test_kubernetes_has_a_deployment_per_service_and_known_settings() -> None:
    docs = list(
        yaml.safe_load_all((DEPLOY / "k8s" / "klimapuls.yaml").read_text("utf-8"))
    )
    deployments = {
        d["metadata"]["name"]: d for d in docs if d and d["kind"] == "Deployment"
    }
    for name in SERVICES:
        container = deployments[f"klimapuls-{name}"]["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert container["command"] == ["python", "-m", f"klimapuls.{name}"]
    config = next(d for d in docs if d and d["kind"] == "ConfigMap")
    assert set(config["data"]) <= _known_variables()
    assert any(d and d["kind"] == "Job" for d in docs)
