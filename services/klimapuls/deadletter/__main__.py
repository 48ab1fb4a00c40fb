"""Run the dead-letter service: `python -m klimapuls.deadletter`."""

from klimapuls.deadletter.app import create_app
from klimapuls.settings import Settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    run_worker(create_app(Settings()))
