"""The pure core: domain model, target math, validation and settings.

Nothing here imports Kafka, HTTP or database code (an import-linter contract
checks it), so all of it is testable without servers.
"""
