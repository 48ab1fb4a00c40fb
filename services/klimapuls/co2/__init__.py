"""CO2 service: stores CO2 accounts and targets, keeps series and progress current."""
