"""Fleet service: bus fleet electrification figures (fleet_status.v1)."""
