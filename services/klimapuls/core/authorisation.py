"""Who may write what: the scope an event writes, and the grants that allow it.

A producer (the `producer` field of an event, stamped by the gateway from
the token that sent it) holds grants: (scope, family) pairs, either of which
may be `*`. An event of an inbound family writes one scope, named by one of
its fields:

- `co2_account`: `municipality_code`, the municipality;
- `target`: `scope`, the target's scope (kommune code, `1084`, `DK`, `movia`);
- `fleet_status`: `operator`, who reports the buses (`movia`,
  `region-hovedstaden`, a kommune code, an operating company);
- `mobility_count`: `municipality_code`, where the counting site is;
- `initiative_status`: `tovholdere`, any one of the tovholdere it names (a
  kommune code, `1084` for Region Hovedstaden, `klimaalliancen` for the
  secretariat), or `1084` when it names none.

A counting site keeps the municipality of its first stored count: a later
count naming another municipality is stored only when its producer may also
write the stored one (`site_owner_issue`), so a producer can neither move a
site into its own municipality nor move another's site out of it.

A grant names a scope exactly: the region's `1084` is the region's own
scope, not a licence to write its municipalities' figures. A tovholder
reports on its initiative, so any one named tovholder suffices. Outbound
messages (`series_change`, ...) are not checked here: only the services
write them, which the Kafka ACLs enforce.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from klimapuls.core.errors import FieldIssue
from klimapuls.core.initiatives import REGION_TOVHOLDER, SECRETARIAT_TOVHOLDER
from klimapuls.core.model import REGION_CODE
from klimapuls.core.reference import municipalities

__all__ = [
    "ANY",
    "BUILTIN_PRODUCERS",
    "SECRETARIAT_SCOPE",
    "Grant",
    "Grants",
    "WrittenScope",
    "authorisation_issue",
    "site_owner_issue",
    "tovholder_scope",
    "written_scope",
]

#: A grant's scope or family that matches every scope or family.
ANY = "*"
#: The scope of the Klimaalliancen secretariat as a tovholder.
SECRETARIAT_SCOPE = "klimaalliancen"
#: Producers of the platform itself, granted every scope by `db upgrade`:
#: the seed targets, the demo feed, the simulator and the CLI importers.
BUILTIN_PRODUCERS: tuple[str, ...] = (
    "klimapuls-seed",
    "klimapuls-demo",
    "klimapuls-simulator (synthetic)",
    "klimapuls-cli",
    "klimapuls-import",
)


@dataclass(frozen=True)
class Grant:
    """A producer may write `scope` (or every scope, `*`) in family `kind`."""

    producer: str
    scope: str
    kind: str = ANY


class Grants:
    """Every producer's grants, for fast checks."""

    def __init__(self, grants: Iterable[Grant] = ()) -> None:
        self._pairs: dict[str, set[tuple[str, str]]] = {}
        for grant in grants:
            self._pairs.setdefault(grant.producer, set()).add((grant.kind, grant.scope))

    def allows(self, producer: str, kind: str, scope: str) -> bool:
        """Whether `producer` may write `scope` in family `kind`."""
        pairs = self._pairs.get(producer)
        if not pairs:
            return False
        # Spelled out: checked for every event, where a generator costs more
        # than the four lookups.
        return (
            (kind, scope) in pairs
            or (kind, ANY) in pairs
            or (ANY, scope) in pairs
            or (ANY, ANY) in pairs
        )

    def scopes_of(self, producer: str) -> list[Grant]:
        """The grants `producer` holds, sorted."""
        return [
            Grant(producer, scope, kind)
            for kind, scope in sorted(self._pairs.get(producer, ()))
        ]

    def producers(self) -> list[str]:
        """Every producer holding a grant, sorted."""
        return sorted(self._pairs)

    def __contains__(self, producer: object) -> bool:
        return producer in self._pairs

    def __len__(self) -> int:
        return sum(len(pairs) for pairs in self._pairs.values())


@dataclass(frozen=True)
class WrittenScope:
    """The scope an event writes: the field naming it, and the scope codes.

    The producer needs a grant for any one of `scopes` (one scope for every
    family but `initiative_status`, whose tovholdere share the initiative).
    """

    field: str
    scopes: tuple[str, ...]


_SCOPE_FIELDS = {
    "co2_account": "municipality_code",
    "target": "scope",
    "fleet_status": "operator",
    "mobility_count": "municipality_code",
}


@cache
def _tovholder_scopes() -> dict[str, str]:
    names = {m.name: m.code for m in municipalities()}
    names[REGION_TOVHOLDER] = REGION_CODE
    names[SECRETARIAT_TOVHOLDER] = SECRETARIAT_SCOPE
    return names


def tovholder_scope(name: str) -> str:
    """The scope code of a tovholder's name (`Frederiksberg` -> `147`)."""
    return _tovholder_scopes().get(name, name)


def written_scope(kind: str, event: Mapping[str, Any]) -> WrittenScope | None:
    """The scope a validated event of `kind` writes; None for other families."""
    if kind in _SCOPE_FIELDS:
        name = _SCOPE_FIELDS[kind]
        return WrittenScope(name, (str(event[name]),))
    if kind == "initiative_status":
        named = tuple(tovholder_scope(t) for t in event.get("tovholdere", []))
        return WrittenScope("tovholdere", named or (REGION_CODE,))
    return None


def authorisation_issue(
    grants: Grants, kind: str, event: Mapping[str, Any]
) -> FieldIssue | None:
    """Why the event's producer may not write what it writes, or None.

    `event` has passed validation (so its fields have their schema's types).
    """
    name = _SCOPE_FIELDS.get(kind)
    if name is not None:
        # The common case, checked for every event: no scope object made.
        if grants.allows(str(event["producer"]), kind, str(event[name])):
            return None
    written = written_scope(kind, event)
    if written is None:
        return None
    producer = str(event["producer"])
    for scope in written.scopes:
        if grants.allows(producer, kind, scope):
            return None
    wanted = " or ".join(repr(s) for s in written.scopes[:5])
    if producer not in grants:
        why = "holds no grant"
    else:
        held = ", ".join(
            f"{g.scope}" + ("" if g.kind == ANY else f" ({g.kind})")
            for g in grants.scopes_of(producer)[:5]
        )
        why = f"may write only {held}"
    return FieldIssue(
        "producer",
        f"producer {producer[:100]!r} {why}; not {kind} for {written.field} {wanted}",
    )


def site_owner_issue(
    grants: Grants, event: Mapping[str, Any], owner: str | None
) -> FieldIssue | None:
    """Why a count may not name its municipality, given its site's `owner`.

    `owner` is the municipality of the site's first stored count (None for
    a new site). A count naming another municipality is refused unless its
    producer may also write mobility counts of the owner.
    """
    code = str(event["municipality_code"])
    if owner is None or owner == code:
        return None
    producer = str(event["producer"])
    if grants.allows(producer, "mobility_count", owner):
        return None
    return FieldIssue(
        "municipality_code",
        f"counting site {str(event['site_id'])[:100]!r} belongs to municipality "
        f"{owner!r}; producer {producer[:100]!r} may not move it to {code!r}",
    )
