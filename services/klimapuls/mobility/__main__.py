"""Run the mobility service: `python -m klimapuls.mobility`."""

import os

from klimapuls.bulk import run_bulk_workers
from klimapuls.mobility.app import create_worker, preload
from klimapuls.settings import service_settings

if __name__ == "__main__":
    settings = service_settings("mobility")
    workers = settings.mobility_worker_count(os.cpu_count())
    run_bulk_workers(create_worker, settings, workers, preload)
