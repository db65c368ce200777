"""Realm of Training: the engine room."""

__version__ = "0.1.0"
