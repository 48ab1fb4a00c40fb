"""The self-contained HTML report (`klimapuls report --html`)."""

from klimapuls.report.page import ReportInput, render_report

__all__ = ["ReportInput", "render_report"]
