"""Evaluate a host's facts: the playbook's built-in checks, each with its resolved params."""

from __future__ import annotations

from fleet.checks.params import Overrides, resolve_params
from fleet.checks.registry import CHECKS
from fleet.facts import HostFacts
from fleet.playbook.model import Playbook
from fleet.results import CheckResult


def evaluate_host(
    playbook: Playbook, host_facts: HostFacts, overrides: Overrides
) -> list[CheckResult]:
    """The playbook's built-in checks, in playbook order, for one host's facts."""
    params = resolve_params(playbook, overrides)
    return [CHECKS[cid].evaluate(host_facts, params[cid]) for cid in playbook.checks]
