"""Transport faults a lab WinRM endpoint can carry (the host state's faults stay elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

NAMES = frozenset(
    {
        "unreachable",
        "auth_fail",
        "hang",
        "drop",
        "garbage",
        "slow",
        "winrm_fault",
        "tls_untrusted",
        "ntlm_disabled",
    }
)


@dataclass(frozen=True)
class EndpointFaults:
    """`tls_untrusted` is not here: it is a certificate from a CA the inventory does not trust,
    chosen when the lab builds the endpoint's TLS context (see fleet.lab.winrm.certs)."""

    unreachable: bool = False  # do not listen at all
    auth_fail: bool = False  # every credential is rejected (HTTP 401)
    hang: bool = False  # Command / command Receive never answered
    drop: bool = False  # the socket closes when a command is sent
    garbage: bool = False  # non-XML answers once authenticated
    winrm_fault: bool = False  # shell Create answered with a WS-Man fault (access denied)
    ntlm_disabled: bool = False  # NTLM refused (401): Kerberos only
    slow_s: float = 0.0  # extra delay before every answer
    latency_s: float = 0.0  # simulated network latency per request (benchmarks)

    @classmethod
    def from_names(
        cls, names: Iterable[str], *, slow_s: float = 2.0, latency_s: float = 0.0
    ) -> EndpointFaults:
        names = set(names)
        unknown = names - NAMES
        if unknown:
            raise ValueError(f"unknown WinRM fault(s): {', '.join(sorted(unknown))}")
        return cls(
            unreachable="unreachable" in names,
            auth_fail="auth_fail" in names,
            hang="hang" in names,
            drop="drop" in names,
            garbage="garbage" in names,
            winrm_fault="winrm_fault" in names,
            ntlm_disabled="ntlm_disabled" in names,
            slow_s=slow_s if "slow" in names else 0.0,
            latency_s=latency_s,
        )
