"""Shipping: creates shipments with tracking numbers for reserved orders."""
