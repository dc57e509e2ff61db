"""rdp.listener: connections allowed, TermService running, listener on the expected port.

Whether connections are allowed is `fDenyTSConnections`: the Group Policy value ("Allow users
to connect remotely by using Remote Desktop Services", under
HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services) overrides the Terminal Server
one when configured, and then only Group Policy can change it:
https://learn.microsoft.com/windows/client-management/mdm/policy-csp-remotedesktopservices
(#allowuserstoconnectremotely).
"""

from __future__ import annotations

from pydantic import Field

from fleet.checks.base import Params, define, result
from fleet.facts import Facts, HostFacts
from fleet.results import CheckResult, CheckStatus

ID = "rdp.listener"
DEFAULT_PORT = 3389  # RDP-Tcp PortNumber when the value is absent


class ListenerParams(Params):
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="Expected RDP-Tcp port.")


def effective_deny(facts: Facts) -> tuple[int | None, str]:
    """fDenyTSConnections as Windows applies it, and where it comes from ("policy"/"local")."""
    policy = facts.rdp_policy.deny_ts_connections if facts.rdp_policy else None
    if policy is not None:
        return policy, "policy"
    return (facts.rdp.deny_ts_connections if facts.rdp else None), "local"


def evaluate(host: HostFacts, params: ListenerParams) -> CheckResult:
    facts = host.facts
    assert facts.rdp is not None
    service = facts.service("TermService")
    deny, source = effective_deny(facts)
    port = facts.rdp.port_number if facts.rdp.port_number is not None else DEFAULT_PORT
    evidence = {
        "deny_ts_connections": deny,
        "deny_decided_by": source,
        "local_deny_ts_connections": facts.rdp.deny_ts_connections,
        "port": port,
        "expected_port": params.port,
        "termservice": service.status if service else None,
        "termservice_start_type": service.start_type if service else None,
    }
    problems: list[str] = []
    manual = None  # what the planner cannot do (fleet.checks.evaluate keeps it then)
    if deny != 0 and source == "policy":
        problems.append(
            f"remote connections are denied by Group Policy (fDenyTSConnections={deny})"
        )
    elif deny != 0:
        what = " not set" if deny is None else f"={deny}"
        problems.append(f"remote connections are denied (fDenyTSConnections{what})")
    if service is None:
        problems.append("TermService is not installed")
        manual = "manual: the Remote Desktop Services service is missing"
    elif service.status.lower() != "running":
        problems.append(f"TermService is {service.status}")
    if port != params.port:
        problems.append(f"listening on port {port}, expected {params.port}")
    if not problems:
        return result(
            ID,
            CheckStatus.PASS,
            f"RDP listener enabled on port {port}, TermService running",
            evidence,
        )
    return result(ID, CheckStatus.FAIL, "; ".join(problems), evidence, manual)


CHECK = define(
    ID,
    "RDP listener enabled and running",
    ListenerParams,
    evaluate,
    requires=("rdp", "services"),
    optional=("rdp_policy",),
)
