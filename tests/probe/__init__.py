"""A probe app, installed only in tests, whose messages exercise the backbone."""
