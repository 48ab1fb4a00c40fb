"""Initiatives service: status reports (initiative_status.v1) and tovholdere.

Stores every report (restatements kept), registers initiatives first seen in
reports, and keeps tovholder assignments and hand-overs with their dates;
missing reports per round and initiatives without a tovholder are views.
"""
