"""Playbooks: which checks to run with which parameters, and the PowerShell scripts."""
