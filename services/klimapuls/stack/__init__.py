"""The embedded default stack: a Tansu broker and a PostgreSQL server from pip.

Used by `klimapuls up` when no `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` is
configured, and by the test fixtures. Production runs against real Kafka and
PostgreSQL given by URL (see `deploy/`).
"""

from klimapuls.stack.broker import EmbeddedBroker
from klimapuls.stack.database import EmbeddedPostgres
from klimapuls.stack.topics import ensure_topics

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "ensure_topics"]
