"""Scheduled checks: performance monitoring and degradation detection."""
