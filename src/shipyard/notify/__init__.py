"""Notification channels: where alert events go (webhook, Slack, email, Alertmanager) and their delivery."""
