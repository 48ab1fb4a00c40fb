"""Run the initiatives service: `python -m klimapuls.initiatives`."""

from klimapuls.initiatives.app import create_app
from klimapuls.settings import Settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    run_worker(create_app(Settings()))
