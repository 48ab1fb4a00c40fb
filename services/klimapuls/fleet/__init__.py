"""Fleet service: bus fleet electrification figures (fleet_status.v1).

Stores every fleet snapshot (restatements kept), keeps `fleet_share` (fossil-free
and zero-emission shares per operator and for the region) current, and the
progress of targets on `fossil_free_bus_share` and `zero_emission_bus_share`.
"""
