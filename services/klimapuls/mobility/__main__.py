"""Run the mobility service: `python -m klimapuls.mobility`."""

import os

from klimapuls.bulk import run_bulk_workers
from klimapuls.mobility.app import create_worker
from klimapuls.settings import service_settings

if __name__ == "__main__":
    settings = service_settings("mobility")
    # Unset: one worker per core, but no more than a topic has partitions.
    workers = settings.mobility_workers or min(
        os.cpu_count() or 1, settings.topic_partitions
    )
    run_bulk_workers(create_worker, settings, workers)
