"""Which lab WinRM hosts the inventory reaches by Kerberos, their vars, and what truth says.

`--winrm-auth ntlm` (the default) runs no KDC; `kerberos` puts every WinRM host in the
lab's realm and its inventory on Kerberos; `mixed` runs the realm for all WinRM hosts (each
is "domain-joined": it has a keytab and accepts both) but writes Kerberos into the inventory
of a seeded half only, so one audit drives SSH, NTLM and Kerberos hosts side by side. A host
with the `ntlm_disabled` fault is always a Kerberos host: that is the only way in.

Truth (from faults and lab options alone, never from fleet's own results):
- an `ntlm_disabled` host carries `"ntlm": "auth_failed"`: what an audit that reaches it by
  NTLM must report. Its `status` is what the lab's own inventory gets: by Kerberos, the
  state faults' outcome; in a lab without a KDC there is no way in, so `auth_failed`;
- with `--kdc-clock-offset` beyond Kerberos' 5-minute tolerance every Kerberos host is
  `auth_failed`: the realm's clock and the machine's disagree, so the tickets do too (a
  client correcting its requests to the KDC's clock is refused by the hosts instead).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from fleet.lab.kdc import CONFIG, REALM, fqdn
from fleet.results import HostStatus
from fleet.transports.kerberos_errors import MAX_SKEW_S

Auth = Literal["ntlm", "kerberos"]
WinrmAuth = Literal["ntlm", "kerberos", "mixed"]
NTLM_ONLY_FAULT = "ntlm_disabled"


def host_auths(
    winrm_auth: str, winrm: Sequence[str], faults: Mapping[str, Sequence[str]], seed: int
) -> dict[str, Auth]:
    """How the inventory authenticates each WinRM host."""
    ordered = sorted(winrm)
    refusing = [n for n in ordered if NTLM_ONLY_FAULT in faults.get(n, ())]
    if winrm_auth == "ntlm":
        return dict.fromkeys(ordered, "ntlm")
    if winrm_auth == "kerberos":
        return dict.fromkeys(ordered, "kerberos")
    shuffled = list(ordered)
    random.Random(f"fleet-lab-auth:{seed}").shuffle(shuffled)
    kerberos = set(shuffled[: len(shuffled) // 2]) | set(refusing)
    return {n: "kerberos" if n in kerberos else "ntlm" for n in ordered}


def _kerberos_vars() -> dict[str, Any]:
    return {
        "fleet_winrm_auth": "kerberos",
        "fleet_kerberos_realm": REALM,
        "fleet_kerberos_config": CONFIG,
    }


def shared_vars(winrm_auth: str) -> dict[str, Any]:
    """Vars every WinRM host of the lab shares: Kerberos in a Kerberos lab (in a mixed one
    the NTLM hosts carry nothing of Kerberos, as hosts outside the domain would not)."""
    return _kerberos_vars() if winrm_auth == "kerberos" else {}


def host_vars(name: str, auth: Auth | None, winrm_auth: str) -> dict[str, Any]:
    """A Kerberos host's own vars: the DNS name its SPNs carry (it is addressed by IP), and
    in a mixed lab the Kerberos settings the shared vars leave out."""
    if auth != "kerberos":
        return {}
    out = _kerberos_vars() if winrm_auth == "mixed" else {}
    out["ansible_psrp_negotiate_hostname_override"] = fqdn(name)
    return out


def add_kerberos_truth(
    truth: dict[str, Any],
    hosts: Iterable[tuple[str, Auth | None, Sequence[str]]],
    clock_offset_s: int,
) -> None:
    """`hosts`: (name, auth, faults) of every lab host (see the module docstring)."""
    skewed = abs(clock_offset_s) > MAX_SKEW_S
    for name, auth, faults in hosts:
        entry = truth["hosts"][name]
        refuses_ntlm = NTLM_ONLY_FAULT in faults
        if (skewed and auth == "kerberos") or (refuses_ntlm and auth == "ntlm"):
            entry.update(status=str(HostStatus.AUTH_FAILED), fail=[], warn=[])
        if refuses_ntlm:
            entry["ntlm"] = str(HostStatus.AUTH_FAILED)
