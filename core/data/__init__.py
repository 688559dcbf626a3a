"""Data sets of the lessons, with their offline fallbacks."""
