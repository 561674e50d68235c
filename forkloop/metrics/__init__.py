"""Prometheus metrics: the observer, aggregation across workers, the /metrics exposition."""
