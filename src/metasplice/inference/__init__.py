"""Applying trained meta models to new data."""

from metasplice.inference.recalibrate import recalibrate

__all__ = ["recalibrate"]
