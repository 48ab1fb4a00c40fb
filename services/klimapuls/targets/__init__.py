"""Targets service: target versions, progress, trajectories and status changes.

The one writer of `target_version`, `target_progress`, `target_trajectory`
and `target_status_change` (the outbox of `target-status`). It consumes
`target` events and the `series-change` notices of the services that own
the measured series, loads the facts, evaluates every target with the core
and publishes status changes in order.
"""
