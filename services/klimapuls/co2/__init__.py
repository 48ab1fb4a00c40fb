"""CO2 service: stores CO2 accounts and targets, keeps series and progress current."""

__all__ = ["CO2_ACCOUNT"]

#: The event family this service consumes.
CO2_ACCOUNT = "co2_account"
