"""Run the mobility service: `python -m klimapuls.mobility`."""

from klimapuls.bulk import run_bulk_workers
from klimapuls.mobility.app import create_worker
from klimapuls.settings import service_settings

if __name__ == "__main__":
    settings = service_settings("mobility")
    run_bulk_workers(create_worker, settings, settings.mobility_workers)
