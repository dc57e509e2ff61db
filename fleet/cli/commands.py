"""Imports every command module so each registers its commands on `fleet.cli.app.app`."""

# One line per command module; keep sorted.
from fleet.cli import inventory_cmd  # noqa: F401
from fleet.cli import lab_cmd  # noqa: F401
from fleet.cli import probe_cmd  # noqa: F401
