"""Imports every command module so each registers its commands on `fleet.cli.app.app`."""

# One line per command module; in the order --help lists them.
    apply_cmd,  # noqa: F401
    audit_cmd,  # noqa: F401
    inventory_cmd,  # noqa: F401
    journal_cmd,  # noqa: F401
    lab_cmd,  # noqa: F401
    plan_cmd,  # noqa: F401
    probe_cmd,  # noqa: F401
)
from fleet.cli import (
