"""Transports: one small async seam (connect, run a script with parameters, close)."""
