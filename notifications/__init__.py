"""Notifications: emails the customer at the moments a customer cares about."""
