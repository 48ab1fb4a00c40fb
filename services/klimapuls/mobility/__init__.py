"""Mobility service: traffic counts (mobility_count.v1), rollups, modal split."""
