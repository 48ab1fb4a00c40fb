"""Run the initiatives service: `python -m klimapuls.initiatives`."""

from klimapuls.initiatives.app import create_app
from klimapuls.settings import service_settings
from klimapuls.streaming import run_worker

if __name__ == "__main__":
    settings = service_settings("initiatives")
    run_worker(create_app(settings), settings)
