"""Run the CO2 service: `python -m klimapuls.co2`."""

from klimapuls.co2.app import create_app
from klimapuls.settings import service_settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    settings = service_settings("co2")
    run_worker(create_app(settings), settings)
