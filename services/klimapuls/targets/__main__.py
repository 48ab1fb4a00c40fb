"""Run the targets service: `python -m klimapuls.targets`."""

from klimapuls.settings import service_settings
from klimapuls.streaming import run_worker
from klimapuls.targets.app import create_app

if __name__ == "__main__":
    settings = service_settings("targets")
    run_worker(create_app(settings), settings)
