"""Grafana boards, alert rules and provisioning for Klimapuls, as code."""

from klimapuls.boards.catalogue import all_boards, generated_files, write_generated
from klimapuls.boards.panels import DATASOURCE_UID, Board, PanelQuery

__all__ = [
    "DATASOURCE_UID",
    "Board",
    "PanelQuery",
    "all_boards",
    "generated_files",
    "write_generated",
]
