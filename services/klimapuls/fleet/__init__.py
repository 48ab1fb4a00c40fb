"""Fleet service: bus fleet electrification figures (fleet_status.v1).

Stores every fleet snapshot (restatements kept) and keeps `fleet_share`
(fossil-free and zero-emission shares per operator and for the region)
current; the targets service evaluates the fleet targets from the snapshots.
"""

__all__ = ["FLEET_STATUS"]

#: The event family this service consumes.
FLEET_STATUS = "fleet_status"
