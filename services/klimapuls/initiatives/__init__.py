"""Initiatives service: status reports (initiative_status.v1) and tovholdere."""
