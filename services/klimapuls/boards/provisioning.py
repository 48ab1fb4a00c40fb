"""Create or update everything Klimapuls needs on a running Grafana, by uid.

`provision` writes the PostgreSQL datasource (from the datasource
provisioning file under `grafana/provisioning/datasources/`), the folder,
every board and the alert rule group, each only when what Grafana holds
differs from ours: it reads first, compares every field we set (Grafana's
own additions, such as ids, versions and defaults, are ignored), and writes
only what differs. A second run therefore changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import yaml
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from klimapuls.boards.alert_rules import (
    ALERT_FOLDER,
    ALERT_FOLDER_UID,
    RULE_GROUP,
    rule_payloads,
)
from klimapuls.boards.panels import DATASOURCE_UID, Board
from klimapuls.boards.thresholds import EVALUATION_INTERVAL
from klimapuls.core.alerting import AlertRules
from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.settings import GrafanaSettings

__all__ = [
    "Change",
    "GrafanaProvisioningError",
    "covers",
    "datasource_definition",
    "grafana_api",
    "provision",
]

Action = Literal["created", "updated", "unchanged"]


class GrafanaProvisioningError(KlimapulsError):
    """Grafana refused or could not be reached; the message names the object."""


@dataclass(frozen=True)
class Change:
    """What provisioning did to one object."""

    kind: str
    uid: str
    action: Action


def grafana_api(url: str, token: str | None, settings: GrafanaSettings) -> GrafanaApi:
    """A client for `url` with a token, or the user and password of `settings`."""
    if not url:
        raise ConfigurationError(
            "no Grafana URL: give --url or GRAFANA_URL, e.g. http://grafana:3000"
        )
    credential: str | tuple[str, str] | None = token
    if credential is None and settings.user and settings.password is not None:
        credential = (settings.user, settings.password.get_secret_value())
    return GrafanaApi.from_url(url, credential=credential, timeout=10.0)


def covers(ours: Any, theirs: Any) -> bool:
    """Whether `theirs` holds every value `ours` sets (extra keys are fine)."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(
            key in theirs and covers(value, theirs[key]) for key, value in ours.items()
        )
    if isinstance(ours, list):
        return (
            isinstance(theirs, list)
            and len(ours) == len(theirs)
            and all(covers(a, b) for a, b in zip(ours, theirs, strict=True))
        )
    if isinstance(ours, float | int) and isinstance(theirs, float | int):
        return float(ours) == float(theirs)
    return bool(ours == theirs)


_VARIABLE = re.compile(r"\$\{(\w+)\}")


def datasource_definition(
    password: str | None, variables: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The datasource of the provisioning file, in the API's shape.

    `${NAME}` placeholders (host, database, user) are filled from
    `variables` (`GrafanaSettings.datasource_variables`), as Grafana fills
    them from its environment when it reads the file.
    """
    text = (
        resources.files("klimapuls.grafana")
        .joinpath("provisioning", "datasources", "klimapuls.yaml")
        .read_text(encoding="utf-8")
    )
    # The defaults without reading the environment (settings come from entry points).
    defaults = GrafanaSettings.model_construct().datasource_variables()
    known = {**defaults, **(variables or {})}
    text = _VARIABLE.sub(lambda m: known.get(m.group(1), m.group(0)), text)
    (source,) = yaml.safe_load(text)["datasources"]
    definition = {
        key: value for key, value in source.items() if key != "secureJsonData"
    }
    if password is not None:
        definition["secureJsonData"] = {"password": password}
    return definition


def _get(call: Any, *args: Any) -> Any:
    """The object, or None when Grafana says it does not exist."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _datasource(
    api: GrafanaApi, password: str | None, variables: Mapping[str, str] | None
) -> Change:
    wanted = datasource_definition(password, variables)
    current = _get(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    comparable = {k: v for k, v in wanted.items() if k != "secureJsonData"}
    if current is None:
        api.datasource.create_datasource(wanted)
        return Change("datasource", DATASOURCE_UID, "created")
    if covers(comparable, current):
        return Change("datasource", DATASOURCE_UID, "unchanged")
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, wanted)
    return Change("datasource", DATASOURCE_UID, "updated")


def _folder(api: GrafanaApi) -> Change:
    current = _get(api.folder.get_folder, ALERT_FOLDER_UID)
    if current is None:
        api.folder.create_folder(ALERT_FOLDER, uid=ALERT_FOLDER_UID)
        return Change("folder", ALERT_FOLDER_UID, "created")
    if current.get("title") == ALERT_FOLDER:
        return Change("folder", ALERT_FOLDER_UID, "unchanged")
    api.folder.update_folder(ALERT_FOLDER_UID, title=ALERT_FOLDER, overwrite=True)
    return Change("folder", ALERT_FOLDER_UID, "updated")


def _board(api: GrafanaApi, board: Board) -> Change:
    current = _get(api.dashboard.get_dashboard, board.uid)
    if current is not None:
        stored = current.get("dashboard", {})
        in_folder = current.get("meta", {}).get("folderUid") == ALERT_FOLDER_UID
        if in_folder and covers(board.json, stored):
            return Change("dashboard", board.uid, "unchanged")
    api.dashboard.update_dashboard(
        {
            "dashboard": {**board.json, "id": None},
            "folderUid": ALERT_FOLDER_UID,
            "overwrite": True,
            "message": "klimapuls grafana provision",
        }
    )
    return Change("dashboard", board.uid, "created" if current is None else "updated")


def _seconds(interval: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(interval[:-1]) * units[interval[-1]]


def _rule_group(api: GrafanaApi, rules: AlertRules | None) -> Change:
    wanted = {
        "title": RULE_GROUP,
        "folderUid": ALERT_FOLDER_UID,
        "interval": _seconds(EVALUATION_INTERVAL),
        "rules": rule_payloads(rules),
    }
    current = _get(
        api.alertingprovisioning.get_rule_group, ALERT_FOLDER_UID, RULE_GROUP
    )
    if current is not None and covers(wanted, current):
        return Change("alert-rule-group", RULE_GROUP, "unchanged")
    api.alertingprovisioning.update_rule_group(ALERT_FOLDER_UID, RULE_GROUP, wanted)
    action: Action = "created" if current is None else "updated"
    return Change("alert-rule-group", RULE_GROUP, action)


def provision(
    api: GrafanaApi,
    boards: Iterable[Board],
    datasource_password: str | None = None,
    with_datasource: bool = True,
    with_rules: bool = True,
    rules: AlertRules | None = None,
    variables: Mapping[str, str] | None = None,
) -> list[Change]:
    """Bring Grafana in line with the code; return what was done to each object.

    `rules` are the alert service's settings the alert rules follow;
    `variables` fill the datasource's host, database and user.
    """
    changes: list[Change] = []
    try:
        if with_datasource:
            changes.append(_datasource(api, datasource_password, variables))
        changes.append(_folder(api))
        changes.extend(_board(api, board) for board in boards)
        if with_rules:
            changes.append(_rule_group(api, rules))
    except GrafanaException as exc:
        done = ", ".join(f"{c.kind} {c.uid}" for c in changes) or "nothing"
        raise GrafanaProvisioningError(
            f"Grafana refused: {exc} (done before that: {done})"
        ) from exc
    except OSError as exc:
        # The client's message names its own exception classes: say it plainly.
        raise GrafanaProvisioningError(
            "Grafana did not answer (is it running, and is the address right?)"
        ) from exc
    return changes
