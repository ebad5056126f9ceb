"""Applies the SQL files in migrations/ in order, once each: locally, in tests and at deploy time."""
