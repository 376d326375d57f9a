"""Alerting: alert state and no-flood rules, silences, channels (log, webhooks), notification
log."""
