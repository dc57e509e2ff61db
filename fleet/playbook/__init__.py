"""Playbooks: which checks to run with which parameters (the scripts: fleet.scripts)."""
