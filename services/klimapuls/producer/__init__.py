"""Producers: validate events and send them to Klimapuls topics (kafka-python)."""

from klimapuls.producer.producer import (
    EventProducer,
    LineIssue,
    ProduceReport,
    event_key,
    produce_file,
)

__all__ = ["EventProducer", "LineIssue", "ProduceReport", "event_key", "produce_file"]
