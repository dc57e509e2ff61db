"""rdp.listener: connections allowed, TermService running, listener on the expected port."""

from __future__ import annotations

from pydantic import Field

from fleet.checks.base import Params, define, result
from fleet.facts import HostFacts
from fleet.results import CheckResult, CheckStatus

ID = "rdp.listener"
DEFAULT_PORT = 3389  # RDP-Tcp PortNumber when the value is absent


class ListenerParams(Params):
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="Expected RDP-Tcp port.")


def evaluate(host: HostFacts, params: ListenerParams) -> CheckResult:
    facts = host.facts
    assert facts.rdp is not None
    service = facts.service("TermService")
    deny = facts.rdp.deny_ts_connections
    port = facts.rdp.port_number if facts.rdp.port_number is not None else DEFAULT_PORT
    evidence = {
        "deny_ts_connections": deny,
        "port": port,
        "expected_port": params.port,
        "termservice": service.status if service else None,
        "termservice_start_type": service.start_type if service else None,
    }
    problems: list[str] = []
    fixes: list[str] = []
    if deny != 0:
        what = " not set" if deny is None else f"={deny}"
        problems.append(f"remote connections are denied (fDenyTSConnections{what})")
        fixes.append("set fDenyTSConnections=0")
    if service is None:
        problems.append("TermService is not installed")
        fixes.append("manual: the Remote Desktop Services service is missing")
    elif service.status.lower() != "running":
        problems.append(f"TermService is {service.status}")
        if service.start_type.lower() == "disabled":
            fixes.append("Set-Service TermService -StartupType Manual")
        fixes.append("Start-Service TermService")
    if port != params.port:
        problems.append(f"listening on port {port}, expected {params.port}")
        fixes.append(f"set RDP-Tcp PortNumber={params.port} (or expect port {port})")
    if not problems:
        return result(
            ID,
            CheckStatus.PASS,
            f"RDP listener enabled on port {port}, TermService running",
            evidence,
        )
    return result(ID, CheckStatus.FAIL, "; ".join(problems), evidence, "; ".join(fixes) or None)


CHECK = define(
    ID,
    "RDP listener enabled and running",
    ListenerParams,
    evaluate,
    requires=("rdp", "services"),
)
