"""Run the alerts service: `python -m klimapuls.alerts`."""

from klimapuls.alerts.app import create_app
from klimapuls.settings import service_settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    settings = service_settings("alerts")
    run_worker(create_app(settings), settings)
