"""Dashboards, datasource and provisioning for Grafana, shipped as package data."""
