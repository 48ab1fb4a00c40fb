"""Mobility service: traffic counts (mobility_count.v1), rollups, modal split.

Stores every count in a time-partitioned table (restatements kept, the newest
counting), rolls counts up by hour, day and year incrementally, and keeps the
modal split (`mobility_modal_split`, `mobility_year`) current for the boards;
the targets service evaluates the trip targets from the yearly rollup.
"""

__all__ = ["MOBILITY_COUNT"]

#: The event family this service consumes.
MOBILITY_COUNT = "mobility_count"
