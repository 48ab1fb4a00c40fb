"""Topic creation with kafka-python's admin client."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from klimapuls.settings import Settings

__all__ = ["ensure_topics"]


def ensure_topics(settings: Settings, replication_factor: int = 1) -> list[str]:
    """Create every Klimapuls topic that does not exist yet; return the new ones."""
    admin = KafkaAdminClient(**settings.kafka.kafka_python_options())
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in settings.topics.all() if t not in existing]
        if wanted:
            try:
                admin.create_topics(
                    [
                        NewTopic(t, settings.topic_partitions, replication_factor)
                        for t in wanted
                    ]
                )
            except TopicAlreadyExistsError:
                pass  # another process created them meanwhile
        return wanted
    finally:
        admin.close()
