"""Where the project is: the working directory of every process a test starts."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
