"""Run the dead-letter service: `python -m klimapuls.deadletter`."""

from klimapuls.bulk import run_bulk_worker
from klimapuls.deadletter.app import create_worker
from klimapuls.settings import service_settings

if __name__ == "__main__":
    run_bulk_worker(create_worker(service_settings("deadletter")))
