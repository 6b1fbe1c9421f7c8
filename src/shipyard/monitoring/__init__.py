"""Monitoring on the serving path: the prediction log, live window profiles, and what reads them."""
