"""`costline serve`: the HTTP API, the dashboard pages and the scheduler."""
