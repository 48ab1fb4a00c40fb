"""Run the dead-letter service: `python -m klimapuls.deadletter`."""

from klimapuls.deadletter.app import create_app
from klimapuls.settings import service_settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    settings = service_settings("deadletter")
    run_worker(create_app(settings), settings)
