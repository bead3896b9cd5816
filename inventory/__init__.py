"""Inventory: owns the stock and reserves it for paid orders."""
