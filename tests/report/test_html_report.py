"""`klimapuls report --html`: one self-contained page whose charts render in a
real headless Chromium, with the same numbers from files and from the database."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.cli.progress import read_offline
from klimapuls.core.batch import Incoming
from klimapuls.report import ReportInput, render_report
from klimapuls.simulator import demo_events
from klimapuls.storage.db import in_transaction
from klimapuls.storage.facts import load_facts
from tests.grafana.test_dashboards import _HANDLERS
from tests.report.browser import Browser, Rendered

AS_OF = date(2026, 6, 2)
DOCS = Path(__file__).parent.parent.parent / "docs"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    running = Browser(tmp_path_factory.mktemp("chromium"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The valid events of the demo mix (one day of counts), one JSONL per family."""
    folder = tmp_path_factory.mktemp("demo-events")
    by_kind: dict[str, list[str]] = {}
    for event in demo_events(days=1):
        if not event.malformed:
            by_kind.setdefault(event.kind, []).append(json.dumps(event.body))
    files = []
    for kind, lines in sorted(by_kind.items()):
        path = folder / f"{kind}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    return files


def _not_blank(png: bytes) -> int:
    """How many distinct colours the screenshot has (a blank page has one)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    return len(colours) if colours is not None else 1 << 20


def _write(tmp_path: Path, files: list[Path], *extra: str) -> Path:
    page = tmp_path / "report.html"
    # Several files after one --offline, as `progress --offline FILE...`.
    args = ["report", "--html", str(page), "--as-of", AS_OF.isoformat()]
    args += ["--offline", *(str(path) for path in files)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    return page


def _check_rendered(rendered: Rendered, charts: int) -> None:
    assert rendered.errors == []
    assert rendered.charts == charts
    assert rendered.series > 0 and rendered.bars > 0
    assert _not_blank(rendered.png) > 100


def _keep_screenshot(rendered: Rendered, name: str) -> None:
    # UPDATE_DOCS_SCREENSHOTS=1 refreshes the README's pictures.
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        (DOCS / name).write_bytes(rendered.png)


def _self_contained(html: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "<script" not in html
    assert "Content-Security-Policy" in html


def test_the_overview_report_renders_its_charts_in_chromium(
    browser: Browser, demo_files: list[Path], tmp_path: Path
) -> None:
    page = _write(tmp_path, demo_files)
    html = page.read_text(encoding="utf-8")
    _self_contained(html)
    assert "SYNTETISKE DEMO-DATA" in html
    assert "region-co2-2030" in html and "Dækning" in html
    rendered = browser.render(page)
    _check_rendered(rendered, charts=5)
    _keep_screenshot(rendered, "report-overview.png")
    print(f"overview: {len(html) / 1024:.0f} KiB, rendered in {rendered.seconds:.2f} s")


def test_a_municipality_report_renders_its_own_page(
    browser: Browser, demo_files: list[Path], tmp_path: Path
) -> None:
    from tests.grafana.test_dashboards import DK2020_TARGETS

    targets = tmp_path / "dk2020.jsonl"
    targets.write_text("\n".join(json.dumps(t) for t in DK2020_TARGETS) + "\n")
    page = _write(tmp_path, [*demo_files, targets], "--municipality", "101")
    html = page.read_text(encoding="utf-8")
    _self_contained(html)
    assert "København (101)" in html
    assert "Initiativer med kommunen som tovholder" in html
    assert "dk2020-101-2030" in html
    rendered = browser.render(page)
    _check_rendered(rendered, charts=3)
    _keep_screenshot(rendered, "report-kommune.png")


#: English words the first report showed its Danish readers.
_ENGLISH = re.compile(r"\b(vintage|event files?|database|Sti dk|Prognose dk)\b")


def _visible_text(html: str) -> str:
    html = re.sub(r"<style.*?</style>", "", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", "\n", html)


def test_every_label_a_reader_sees_is_danish(
    demo_files: list[Path], tmp_path: Path
) -> None:
    for extra in ((), ("--municipality", "101")):
        text = _visible_text(_write(tmp_path, demo_files, *extra).read_text("utf-8"))
        assert not _ENGLISH.findall(text), _ENGLISH.findall(text)
        assert "hændelsesfiler (offline)" in text
    overview = _visible_text(_write(tmp_path, demo_files).read_text("utf-8"))
    # Chart legends name targets by their (Danish) names, not by their ids.
    assert "Målsti: " in overview and "Målsti: dk-climate-law-2030" not in overview


def test_offline_takes_several_files_in_either_spelling(
    demo_files: list[Path], tmp_path: Path
) -> None:
    one = _write(tmp_path, demo_files).read_text("utf-8")
    page = tmp_path / "repeated.html"
    args = ["report", "--html", str(page), "--as-of", AS_OF.isoformat()]
    for path in demo_files:
        args += ["--offline", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(demo_files)} hændelsesfiler" in one
    assert page.read_text("utf-8") == one


def test_an_unknown_municipality_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", "--html", str(tmp_path / "x.html"), "--municipality", "999"]
    )
    assert result.exit_code == 2
    assert "unknown municipality '999'" in result.output
    assert not (tmp_path / "x.html").exists()


def test_the_database_and_the_files_give_the_same_report(
    engine: Engine, demo_files: list[Path]
) -> None:
    clock = lambda: datetime(2026, 12, 1, tzinfo=UTC)  # noqa: E731
    for path in demo_files:
        kind = path.stem
        lines = path.read_text(encoding="utf-8").splitlines()
        handler = _HANDLERS[kind](engine, clock)
        for start in range(0, len(lines), 500):
            batch = lines[start : start + 500]
            handler.handle(
                [
                    Incoming(kind, line.encode(), f"f:{start + i}")
                    for i, line in enumerate(batch)
                ]
            )
    _HANDLERS["target"](engine, clock).refresh()  # type: ignore[attr-defined]
    from_db = in_transaction(engine, load_facts)
    offline = read_offline(demo_files, clock())
    assert offline.issues == []
    for municipality in (None, "101"):
        db_page = render_report(ReportInput(from_db, AS_OF, "x", municipality))
        file_page = render_report(ReportInput(offline.facts, AS_OF, "x", municipality))
        assert db_page == file_page


def test_up_writes_the_report_where_it_says(engine: Engine, tmp_path: Path) -> None:
    from rich.console import Console

    from klimapuls.cli.report import write_demo_report

    console = Console(record=True, width=200)
    path = write_demo_report(engine, tmp_path, console)
    assert path.is_file() and str(path) in console.export_text()
    assert shutil.which("chromium") is None or path.stat().st_size > 10_000
