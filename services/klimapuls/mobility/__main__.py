"""Run the mobility service: `python -m klimapuls.mobility`."""

from klimapuls.mobility.app import create_app
from klimapuls.settings import Settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    run_worker(create_app(Settings()))
