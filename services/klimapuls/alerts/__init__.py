"""The alerts service: tells tovholdere and coordinators when something slips.

It consumes `target-status` (every logged evaluation of a target, keyed on
`id`), reads the feeds, initiatives and dead letters from their owners'
tables, evaluates the rules in the core, writes alerts, notices and
deliveries in one transaction, and sends due messages from its outbox
(`alert_message`) through the channels of `klimapuls.notify`.
"""
