"""Producers: validate events and send them to Klimapuls topics (kafka-python)."""

from klimapuls.producer.connect import (
    BrokerUnavailableError,
    check_reachable,
    parse_servers,
)
from klimapuls.producer.producer import (
    EventProducer,
    LineIssue,
    ProduceReport,
    event_key,
    produce_file,
)

__all__ = [
    "BrokerUnavailableError",
    "EventProducer",
    "LineIssue",
    "ProduceReport",
    "check_reachable",
    "event_key",
    "parse_servers",
    "produce_file",
]
