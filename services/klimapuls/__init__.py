"""Klimapuls: event-driven climate and mobility monitoring for Region Hovedstaden."""

__version__ = "0.1.0"
__all__ = ["__version__"]
