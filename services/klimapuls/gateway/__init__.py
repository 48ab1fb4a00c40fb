"""The HTTP gateway: producers POST events with API tokens; Kafka gets them."""

from klimapuls.gateway.app import GATEWAY, create_app
from klimapuls.gateway.server import DEFAULT_PORT, serve

__all__ = ["DEFAULT_PORT", "GATEWAY", "create_app", "serve"]
