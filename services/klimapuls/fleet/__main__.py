"""Run the fleet service: `python -m klimapuls.fleet`."""

from klimapuls.fleet.app import create_app
from klimapuls.settings import service_settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    settings = service_settings("fleet")
    run_worker(create_app(settings), settings)
