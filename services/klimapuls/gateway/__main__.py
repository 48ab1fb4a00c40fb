"""Run the gateway: `python -m klimapuls.gateway`."""

from klimapuls.gateway.server import serve
from klimapuls.settings import Settings

if __name__ == "__main__":
    serve(Settings())
