"""Run the fleet service: `python -m klimapuls.fleet`."""

from klimapuls.bulk import run_bulk_worker
from klimapuls.fleet.app import create_worker
from klimapuls.settings import service_settings

if __name__ == "__main__":
    run_bulk_worker(create_worker(service_settings("fleet")))
