"""Run the alerts service: `python -m klimapuls.alerts`."""

from klimapuls.alerts.app import create_app
from klimapuls.settings import Settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    run_worker(create_app(Settings()))
