"""A thin layer over grafana-foundation-sdk for Klimapuls boards.

Every panel here reads the provisioned PostgreSQL datasource (one pinned
uid), carries a Danish title and a description that says what it answers,
and every chart has a unit and an axis label. A panel's queries also declare
the columns they return (`Sql.columns`), so tests can run each one against a
filled database and check it answers in the expected shape.

The SDK has no PostgreSQL query type: `SqlQuery` is the small dataquery model
Grafana's `grafana-postgresql-datasource` reads (`rawSql`, `format`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar

from grafana_foundation_sdk.builders import (
    barchart,
    common,
    dashboard,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

__all__ = [
    "DATASOURCE",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "STATUS_LABELS",
    "SYNTHETIC_NOTE",
    "Board",
    "BoardBuilder",
    "PanelQuery",
    "Sql",
]

#: The datasource every panel and alert query reads (provisioned by that uid).
DATASOURCE_UID = "klimapuls-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = models.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

#: Said on every panel: demo events carry `synthetic` in `producer` or `source`.
SYNTHETIC_NOTE = (
    "Demo-data er syntetiske (synthetic): hændelser med «synthetic» i producer "
    "eller source er ikke rigtige tal."
)

#: Danish labels of the core's target statuses, with their colours.
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "off_track": ("ude af kurs", "red"),
    "at_risk": ("i risiko", "yellow"),
    "on_track": ("på kurs", "green"),
    "achieved": ("nået", "dark-green"),
    "no_data": ("ingen data", "gray"),
}

Format = Literal["table", "time_series"]


class SqlQuery(cogvariants.Dataquery):
    """A raw SQL query of Grafana's PostgreSQL datasource."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: Format) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.fmt = fmt

    def to_json(self) -> dict[str, object]:
        """The query as Grafana stores it in a panel's `targets`."""
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "rawQuery": True,
            "editorMode": "code",
            "format": self.fmt,
            "rawSql": self.raw_sql,
        }


class Sql(cogbuilder.Builder[SqlQuery]):
    """Builds a `SqlQuery` and remembers the columns it must return."""

    def __init__(
        self,
        raw_sql: str,
        columns: Sequence[str],
        fmt: Format = "table",
        ref_id: str = "A",
    ) -> None:
        self.columns = tuple(columns)
        self._query = SqlQuery(ref_id, raw_sql.strip(), fmt)

    @property
    def raw_sql(self) -> str:
        """The SQL text, with Grafana macros and variables unexpanded."""
        return self._query.raw_sql

    @property
    def ref_id(self) -> str:
        """The query's reference id within its panel."""
        return self._query.ref_id

    def build(self) -> SqlQuery:
        """The query model."""
        return self._query


class _QueryVariable(dashboard.QueryVariable):
    """A query variable without the interval-only `auto*` fields.

    The SDK fills `auto`, `auto_min` and `auto_count` on every variable;
    Grafana's schema knows them only on interval variables and rejects them
    on a query variable.
    """

    def build(self) -> models.VariableModel:
        built = super().build()
        built.auto = None
        built.auto_min = None
        built.auto_count = None
        return built


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel: what tests run, and what it must return."""

    board_uid: str
    panel_id: int
    panel_title: str
    ref_id: str
    raw_sql: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Board:
    """A generated board: its Grafana JSON and the queries of its panels."""

    uid: str
    title: str
    json: dict[str, Any]
    queries: tuple[PanelQuery, ...]
    variables: dict[str, str] = field(default_factory=dict)


def _status_override() -> list[models.DynamicConfigValue]:
    options = {
        key: {"text": text, "color": color, "index": index}
        for index, (key, (text, color)) in enumerate(STATUS_LABELS.items())
    }
    return [
        models.DynamicConfigValue(
            id_val="custom.cellOptions", value={"type": "color-background"}
        ),
        models.DynamicConfigValue(
            id_val="mappings", value=[{"type": "value", "options": options}]
        ),
    ]


_Chart = TypeVar("_Chart", timeseries.Panel, barchart.Panel)


def _chart(panel: _Chart, unit: str, axis_label: str) -> _Chart:
    """What every chart has: its unit, an axis label, a list legend below."""
    return (
        panel.unit(unit)
        .axis_label(axis_label)
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )


class BoardBuilder:
    """Lays out the panels of one board on a 24-column grid, row by row."""

    def __init__(
        self,
        uid: str,
        title: str,
        description: str,
        tags: Sequence[str],
        time_from: str = "now-40y",
        time_to: str = "now+20y",
    ) -> None:
        self.uid = uid
        self.title = title
        self._dashboard = (
            dashboard.Dashboard(title)
            .uid(uid)
            .description(f"{description} {SYNTHETIC_NOTE}")
            .tags(["klimapuls", *tags])
            .timezone("Europe/Copenhagen")
            .time(time_from, time_to)
            .refresh("5m")
            .readonly()
        )
        self._queries: list[PanelQuery] = []
        self._variables: dict[str, str] = {}
        self._next_id = 1
        self._x = self._y = self._row_height = 0

    # -- layout -----------------------------------------------------------

    def _place(self, width: int, height: int) -> models.GridPos:
        if self._x + width > 24:
            self._x, self._y = 0, self._y + self._row_height
            self._row_height = 0
        position = models.GridPos(h=height, w=width, x=self._x, y=self._y)
        self._x += width
        self._row_height = max(self._row_height, height)
        return position

    def _add(
        self,
        panel: Any,
        title: str,
        description: str,
        queries: Sequence[Sql],
        width: int,
        height: int,
    ) -> None:
        panel_id = self._next_id
        self._next_id += 1
        panel.id(panel_id).title(title).description(
            f"{description} {SYNTHETIC_NOTE}"
        ).datasource(DATASOURCE).grid_pos(self._place(width, height))
        for query in queries:
            panel.with_target(query)
            self._queries.append(
                PanelQuery(
                    self.uid,
                    panel_id,
                    title,
                    query.ref_id,
                    query.raw_sql,
                    query.columns,
                )
            )
        self._dashboard.with_panel(panel)

    # -- variables --------------------------------------------------------

    def variable(self, name: str, label: str, sql: str, default: str) -> Self:
        """A single-choice variable filled by `sql` (`__value`, `__text`)."""
        self._variables[name] = default
        self._dashboard.with_variable(
            _QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(sql)
            .refresh(models.VariableRefresh.ON_DASHBOARD_LOAD)
            .current(models.VariableOption(text=default, value=default))
            .allow_custom_value(False)
        )
        return self

    # -- panels -----------------------------------------------------------

    def origin(self, kinds: Sequence[str], width: int = 6, height: int = 4) -> Self:
        """A stat saying whether this board's data are synthetic (demo) data."""
        listed = ", ".join(f"'{k}'" for k in kinds)
        sql = Sql(
            "SELECT CASE WHEN sum(synthetic_events) > 0 THEN 'syntetisk' "
            "ELSE 'indberettet' END AS \"Datakilde\",\n"
            "       round(100.0 * sum(synthetic_events) / nullif(sum(events), 0))"
            ' AS "Syntetisk andel %"\n'
            f"FROM board.data_origin WHERE kind IN ({listed})",
            columns=("Datakilde", "Syntetisk andel %"),
        )
        panel = (
            stat.Panel()
            .unit("percent")
            .text_mode(common_models.BigValueTextMode.VALUE_AND_NAME)
            .color_mode(common_models.BigValueColorMode.BACKGROUND)
            .graph_mode(common_models.BigValueGraphMode.NONE)
            .reduce_options(
                common.ReduceDataOptions()
                .values(True)
                .calcs(["lastNotNull"])
                # Strings too: "syntetisk" is the point of this panel.
                .fields("/.*/")
            )
            # In an override, as Grafana's schema types `defaults.mappings`
            # with an enum no JSON literal satisfies.
            .override_by_name(
                "Datakilde",
                [
                    models.DynamicConfigValue(
                        id_val="mappings",
                        value=[
                            {
                                "type": "value",
                                "options": {
                                    "syntetisk": {
                                        "text": "SYNTETISKE DEMO-DATA",
                                        "color": "orange",
                                        "index": 0,
                                    },
                                    "indberettet": {
                                        "text": "indberettede data",
                                        "color": "green",
                                        "index": 1,
                                    },
                                },
                            }
                        ],
                    )
                ],
            )
        )
        self._add(
            panel,
            "Datakilde: syntetisk eller indberettet?",
            "Viser «syntetisk», når boardets data er demo-data fra simulatoren.",
            [sql],
            width,
            height,
        )
        return self

    def timeseries(
        self,
        title: str,
        description: str,
        queries: Sequence[Sql],
        unit: str,
        axis_label: str,
        width: int = 12,
        height: int = 9,
        stacked: bool = False,
        bars: bool = False,
    ) -> Self:
        """A time series chart (x: time)."""
        panel = _chart(timeseries.Panel(), unit, axis_label)
        panel.span_nulls(True).show_points(common_models.VisibilityMode.AUTO)
        if stacked:
            panel.stacking(
                common.StackingConfig().mode(common_models.StackingMode.NORMAL)
            ).fill_opacity(60)
        if bars:
            panel.draw_style(common_models.GraphDrawStyle.BARS).fill_opacity(70)
        self._add(panel, title, description, queries, width, height)
        return self

    def barchart(
        self,
        title: str,
        description: str,
        queries: Sequence[Sql],
        unit: str,
        axis_label: str,
        x_field: str,
        width: int = 12,
        height: int = 9,
        stacked: bool = False,
    ) -> Self:
        """A bar chart over a text field `x_field` (a year, a name)."""
        panel = _chart(barchart.Panel(), unit, axis_label)
        panel.x_field(x_field).show_value(common_models.VisibilityMode.AUTO)
        if stacked:
            panel.stacking(common_models.StackingMode.NORMAL)
        self._add(panel, title, description, queries, width, height)
        return self

    def stat(
        self,
        title: str,
        description: str,
        queries: Sequence[Sql],
        unit: str,
        width: int = 6,
        height: int = 4,
    ) -> Self:
        """A single figure (the newest value of each numeric column)."""
        panel = (
            stat.Panel()
            .unit(unit)
            .graph_mode(common_models.BigValueGraphMode.NONE)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        )
        self._add(panel, title, description, queries, width, height)
        return self

    def table(
        self,
        title: str,
        description: str,
        queries: Sequence[Sql],
        width: int = 12,
        height: int = 9,
        status_column: str | None = None,
        units: dict[str, str] | None = None,
    ) -> Self:
        """A table; `status_column` shows target statuses in Danish, coloured."""
        panel = table.Panel().filterable(True)
        if status_column is not None:
            panel.override_by_name(status_column, _status_override())
        for column, unit in (units or {}).items():
            panel.override_by_name(
                column, [models.DynamicConfigValue(id_val="unit", value=unit)]
            )
        self._add(panel, title, description, queries, width, height)
        return self

    def build(self) -> Board:
        """The finished board."""
        encoded = json.loads(json.dumps(self._dashboard.build(), cls=JSONEncoder))
        return Board(
            self.uid,
            self.title,
            encoded,
            tuple(self._queries),
            dict(self._variables),
        )
