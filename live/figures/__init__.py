"""The staff dashboard's figures, one part per module, each a plain dict ready for JSON.

``live.dashboard.snapshot`` puts them together. Every part is a few indexed
queries (or one broker round trip per queue): the snapshot is read every
LIVE_FIGURES_INTERVAL seconds while someone watches. Amounts are strings,
moments ISO 8601 strings, durations float seconds, and a figure that cannot
be known here is None with the reason beside it.
"""
