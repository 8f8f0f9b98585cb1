"""Tide: a self-hostable inference platform."""

__version__ = "0.1.0"
