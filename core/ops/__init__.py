"""Operating ember: metrics, the health server, readiness of platforms, graceful shutdown."""
