"""The benchmark: our order flow side by side with a naive baseline and two floors.

Run it with ``python -m bench`` (or ``make bench``); see bench/main.py.
"""
