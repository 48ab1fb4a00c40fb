"""`klimapuls grafana provision`: everything by uid, and a second run writes nothing."""

from __future__ import annotations

from typer.testing import CliRunner

from klimapuls.boards import all_boards
from klimapuls.boards.provisioning import covers, datasource_definition
from klimapuls.cli import app
from klimapuls.settings import GrafanaSettings
from tests.grafana.grafana_stub import grafana_stub


def test_provision_writes_everything_once_and_then_nothing() -> None:
    runner = CliRunner()
    with grafana_stub() as grafana:
        args = ["grafana", "provision", "--url", grafana.url, "--token", "t0ken"]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        written = list(grafana.writes)
        # datasource, folder, six boards, one rule group
        assert len(written) == 9, written
        second = runner.invoke(app, args)
        assert second.exit_code == 0, second.output
        assert grafana.writes == written
        assert "0 of 9 objects written" in second.output
        stored = grafana.objects["/api/dashboards/uid/klimapuls-kommune"]
        assert stored["dashboard"]["title"] == "Klimapuls — kommune"


def test_a_changed_board_is_written_again_and_only_it() -> None:
    from klimapuls.boards.provisioning import grafana_api, provision
    from klimapuls.settings import GrafanaSettings

    with grafana_stub() as grafana:
        api = grafana_api(grafana.url, None, GrafanaSettings())
        provision(api, all_boards())
        key = "/api/dashboards/uid/klimapuls-fleet"
        grafana.objects[key]["dashboard"]["title"] = "changed in the UI"
        before = len(grafana.writes)
        changes = provision(api, all_boards())
        assert [c.uid for c in changes if c.action != "unchanged"] == [
            "klimapuls-fleet"
        ]
        assert len(grafana.writes) == before + 1


def test_an_unreachable_grafana_is_one_line_naming_the_problem() -> None:
    result = CliRunner().invoke(
        app, ["grafana", "provision", "--url", "http://127.0.0.1:9", "--token", "x"]
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_covers_ignores_what_grafana_adds_but_not_what_differs() -> None:
    assert covers({"a": 1, "b": [{"c": 2}]}, {"a": 1.0, "id": 9, "b": [{"c": 2}]})
    assert not covers({"a": 1}, {"a": 2})
    assert not covers({"b": [1, 2]}, {"b": [1]})


def test_the_datasource_comes_from_the_provisioning_file() -> None:
    definition = datasource_definition("secret")
    assert definition["uid"] == "klimapuls-pg"
    assert definition["secureJsonData"] == {"password": "secret"}


def test_the_datasource_address_and_user_come_from_the_settings() -> None:
    assert datasource_definition(None)["url"] == "postgres:5432"
    settings = GrafanaSettings(db_host="db.example.org:5433", db_user="reader")
    definition = datasource_definition(None, settings.datasource_variables())
    assert definition["url"] == "db.example.org:5433"
    assert definition["user"] == "reader"
    assert definition["jsonData"]["database"] == "klimapuls"
    assert "secureJsonData" not in definition
