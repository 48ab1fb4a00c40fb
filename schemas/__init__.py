"""The event schemas (JSON Schema 2020-12), shipped as package data."""
