"""Run the targets service: `python -m klimapuls.targets`."""

from klimapuls.settings import Settings
from klimapuls.streaming import run_worker
from klimapuls.targets.app import create_app

if __name__ == "__main__":
    run_worker(create_app(Settings()))
