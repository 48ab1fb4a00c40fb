"""Run the CO2 service: `python -m klimapuls.co2`."""

from klimapuls.bulk import run_bulk_worker
from klimapuls.co2.app import create_worker
from klimapuls.settings import service_settings

if __name__ == "__main__":
    run_bulk_worker(create_worker(service_settings("co2")))
