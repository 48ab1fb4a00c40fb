"""Run the gateway: `python -m klimapuls.gateway`."""

from klimapuls.gateway.server import serve
from klimapuls.settings import service_settings

if __name__ == "__main__":
    serve(service_settings("gateway"))
