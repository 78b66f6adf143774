"""Metrics, probes and representation health."""
