"""Payments: charges and refunds cards through a simulated gateway."""
