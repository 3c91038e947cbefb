"""The worker's web side: the JSON API, the live dashboard and the Prometheus metrics."""
