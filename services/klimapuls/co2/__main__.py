"""Run the CO2 service: `python -m klimapuls.co2`."""

from klimapuls.co2.app import create_app
from klimapuls.settings import Settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    run_worker(create_app(Settings()))
