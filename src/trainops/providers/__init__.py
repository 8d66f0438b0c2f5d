"""Providers: one adapter per training service, listed in a literal registry."""
