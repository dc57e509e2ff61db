"""Kerberos without a KDC: which hosts use it and with what credential, one acquisition per
principal per run across threads, failures typed with advice (never a GSSAPI blob, never the
secret), krb5.conf chaining, inventory vars, and the lab's realm assignment and truth."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.errors import InputError
from fleet.inventory import load_inventory, target_for
from fleet.lab import kdc
from fleet.lab.kerberos_hosts import add_kerberos_truth, host_auths, host_vars, shared_vars
from fleet.secret import Secret
from fleet.transports import kerberos
from fleet.transports import kerberos_errors as ke
from fleet.transports.base import AuthFailed, Target, Unreachable
from fleet.transports.kerberos import (
    KerberosPlan,
    Tickets,
    check_usable,
    kerberos_plan,
    principal_of,
    use_config,
    wsman_auth,
)
from fleet.transports.winrm_errors import classify

SECRET = "Hunter2-" + "x" * 8


def target(username: str | None = "admin", address: str = "10.0.0.7", **options: Any) -> Target:
    return Target(
        name="rdp-07",
        address=address,
        port=5985,
        transport="winrm",
        username=username,
        password=Secret(SECRET),
        options=options,
    )


@pytest.fixture
def with_gssapi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kerberos, "available", lambda: True)


@pytest.mark.parametrize(
    ("user", "realm", "principal"),
    [
        ("admin@CORP.EXAMPLE", None, "admin@CORP.EXAMPLE"),
        ("admin@CORP.EXAMPLE", "OTHER.EXAMPLE", "admin@CORP.EXAMPLE"),  # the user's own wins
        ("admin", "CORP.EXAMPLE", "admin@CORP.EXAMPLE"),
        ("CORP\\admin", "CORP.EXAMPLE", "admin@CORP.EXAMPLE"),
        ("CORP\\admin", None, None),  # a NetBIOS domain is not a realm
        ("admin", None, "admin"),  # krb5.conf's default realm
        (None, "CORP.EXAMPLE", None),
    ],
)
def test_principal_of_an_inventory_user(
    user: str | None, realm: str | None, principal: str | None
) -> None:
    assert principal_of(user, realm) == principal


def test_negotiate_without_a_kerberos_identity_is_ntlm_and_asks_no_kdc(
    with_gssapi: None,
) -> None:
    # Left to pyspnego, Negotiate with a password would kinit against the default realm of
    # the machine's krb5.conf for every host, a realm the inventory never named.
    assert kerberos_plan(target(), "negotiate") is None
    args = wsman_auth(target(), "negotiate", Tickets())
    assert args == {"auth": "ntlm", "username": "admin", "password": SECRET}


def test_without_gssapi_negotiate_is_left_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kerberos, "available", lambda: False)
    assert wsman_auth(target(), "negotiate", Tickets())["auth"] == "negotiate"
    assert wsman_auth(target(), "basic", Tickets())["auth"] == "basic"


def test_negotiate_prefers_kerberos_for_a_named_host_and_keeps_ntlm_to_fall_back(
    with_gssapi: None,
) -> None:
    t = target("admin@CORP.EXAMPLE", negotiate_hostname_override="rdp-07.corp.example")
    plan = kerberos_plan(t, "negotiate")
    assert plan is not None
    assert (plan.source, plan.principal, plan.ntlm_fallback) == (
        "password",
        "admin@CORP.EXAMPLE",
        True,
    )
    assert (plan.spn, plan.delegate) == ("WSMAN/rdp-07.corp.example", False)


def test_negotiate_by_ip_address_is_ntlm_as_on_windows(with_gssapi: None) -> None:
    # about_Remote_Troubleshooting: Kerberos does not support IP addresses; NTLM is used.
    assert kerberos_plan(target("admin@CORP.EXAMPLE"), "negotiate") is None
    assert kerberos_plan(target("admin", kerberos_realm="CORP.EXAMPLE"), "negotiate") is None


def test_kerberos_auth_sources(with_gssapi: None, tmp_path: Path) -> None:
    keytab = tmp_path / "svc.keytab"
    plan = kerberos_plan(target(kerberos_keytab=keytab), "kerberos")
    assert plan is not None and (plan.source, plan.keytab) == ("keytab", keytab)
    plan = kerberos_plan(target(kerberos_ccache="FILE:/tmp/cc"), "kerberos")
    assert plan is not None and (plan.source, plan.ccache) == ("ccache", "FILE:/tmp/cc")
    no_secret = Target(name="h", address="h.corp", port=5985, transport="winrm")
    plan = kerberos_plan(no_secret, "kerberos")
    assert plan is not None and (plan.source, plan.ccache, plan.principal) == ("ccache", None, None)
    plan = kerberos_plan(target("admin@CORP.EXAMPLE", kinit_mode="manual"), "kerberos")
    assert plan is not None and (plan.source, plan.ccache) == ("ccache", None)  # kinit's own
    plan = kerberos_plan(target(negotiate_delegate=True, negotiate_service="HTTP"), "kerberos")
    assert plan is not None and plan.delegate and plan.spn == "HTTP/10.0.0.7"
    assert not plan.ntlm_fallback  # auth kerberos means Kerberos only


def test_kerberos_settings_are_checked_before_anything_connects(
    with_gssapi: None, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="user@REALM, not DOMAIN"):
        check_usable(target("CORP\\admin"), "kerberos")
    with pytest.raises(InputError, match="keytab not found"):
        check_usable(target(kerberos_keytab=tmp_path / "missing.keytab"), "kerberos")
    with pytest.raises(InputError, match="bad Kerberos setting 'kerberos_realm'"):
        check_usable(target(kerberos_realm="CORP EXAMPLE"), "kerberos")
    check_usable(target("CORP\\admin"), "ntlm")  # not a Kerberos host: nothing to check


def test_kerberos_auth_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kerberos, "available", lambda: False)
    with pytest.raises(InputError, match=r"pip install 'fleet\[kerberos\]'"):
        check_usable(target(), "kerberos")


def test_krb5_conf_files_are_chained_first_and_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KRB5_CONFIG", raising=False)
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    use_config(a)
    use_config(b)
    use_config(a)
    assert os.environ["KRB5_CONFIG"] == f"{b}:{a}:{kerberos.DEFAULT_PROFILE}"
    with pytest.raises(InputError, match="cannot contain ':'"):
        use_config(tmp_path / "x:y.conf")


class _Fake:
    """Stands in for `_acquire`: counts calls, sleeps like a KDC round trip."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error
        self.lock = threading.Lock()

    def __call__(self, plan: KerberosPlan, password: Secret | None) -> Any:
        with self.lock:
            self.calls += 1
        time.sleep(0.05)
        if self.error is not None:
            raise self.error
        return kerberos._Ticket("MEMORY:fake", plan.principal or "", time.time() + 36000)


def _plan(**kw: Any) -> KerberosPlan:
    return KerberosPlan(principal="admin@CORP.EXAMPLE", source="password", **kw)


def _many(tickets: Tickets, plan: KerberosPlan, n: int = 16) -> list[Any]:
    out: list[Any] = []

    def one() -> None:
        try:
            out.append(tickets.credentials(plan, Secret(SECRET)))
        except Exception as exc:
            out.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_one_ticket_per_principal_for_every_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Fake()
    monkeypatch.setattr(kerberos, "_acquire", fake)
    tickets = Tickets()
    results = _many(tickets, _plan())
    assert fake.calls == 1
    assert {r[0].ccache for r in results} == {"MEMORY:fake"}
    _many(tickets, _plan(delegate=True), 4)  # a forwardable TGT is another credential
    assert fake.calls == 2
    # Another realm (an inventory spanning domains): its own principal, its own ticket.
    other = KerberosPlan(principal="ops@EMEA.EXAMPLE", source="password")
    results = _many(tickets, other, 4)
    assert fake.calls == 3 and {r[0].principal for r in results} == {"ops@EMEA.EXAMPLE"}


def test_a_refused_password_is_tried_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Fake(ke.WrongPassword("the KDC of CORP.EXAMPLE refused the password of 'admin'"))
    monkeypatch.setattr(kerberos, "_acquire", fake)
    results = _many(Tickets(), _plan())
    assert fake.calls == 1  # one failed logon, not sixteen: no lockout by fan-out
    assert all(isinstance(r, ke.WrongPassword) for r in results)
    assert len({id(r) for r in results}) == len(results)  # a fresh exception per thread


def test_no_kdc_is_asked_again_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Fake(ke.KdcUnreachable("no KDC of CORP.EXAMPLE could be reached"))
    monkeypatch.setattr(kerberos, "_acquire", fake)
    tickets = Tickets()
    _many(tickets, _plan(), 4)
    assert fake.calls == 1
    monkeypatch.setattr(kerberos, "TRANSIENT_ERROR_S", 0.0)
    _many(tickets, _plan(), 1)
    assert fake.calls == 2


def test_negotiate_falls_back_to_ntlm_when_no_ticket_can_be_had(
    with_gssapi: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kerberos, "_acquire", _Fake(ke.KdcUnreachable("no KDC")))
    t = target("admin@CORP.EXAMPLE", negotiate_hostname_override="rdp-07.corp.example")
    assert wsman_auth(t, "negotiate", Tickets())["auth"] == "ntlm"
    with pytest.raises(ke.KdcUnreachable):
        wsman_auth(t, "kerberos", Tickets())


def test_kerberos_hosts_get_the_run_cache_and_their_spn(
    with_gssapi: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kerberos, "_acquire", _Fake())
    t = target("admin", kerberos_realm="CORP.EXAMPLE", negotiate_hostname_override="rdp-07.corp")
    args = wsman_auth(t, "kerberos", Tickets())
    assert args["auth"] == "kerberos" and args["password"] is None
    (cred,) = args["username"]
    assert (cred.ccache, cred.principal) == ("MEMORY:fake", "admin@CORP.EXAMPLE")
    assert args["negotiate_hostname_override"] == "rdp-07.corp"
    assert args["negotiate_delegate"] is False  # delegation off unless asked
    assert SECRET not in repr(args)


class _Krb5Error(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"something GSSAPI-ish {code} {SECRET}")
        self.err_code = code


class _GSSError(Exception):
    def __init__(self, minor: int) -> None:
        super().__init__("Major (851968): Unspecified GSS failure. Minor code may ...")
        self.min_code = minor & 0xFFFFFFFF  # GSSAPI reports it unsigned


class _SpnegoError(Exception):
    def __init__(self, base: Exception) -> None:
        super().__init__("SpnegoError (1): ...")
        self.base_error = base


@pytest.mark.parametrize(
    ("code", "cls", "words"),
    [
        (ke.PREAUTH_FAILED, ke.WrongPassword, "refused the password of 'admin@CORP.EXAMPLE'"),
        (ke.C_PRINCIPAL_UNKNOWN, ke.UnknownPrincipal, "does not know the user"),
        (ke.S_PRINCIPAL_UNKNOWN, ke.UnknownServicePrincipal, "no service principal WSMAN/h"),
        (ke.SKEW, ke.ClockSkew, "Kerberos rejects clocks more than 5 minutes apart"),
        (ke.KDC_UNREACH, ke.KdcUnreachable, "no KDC of CORP.EXAMPLE could be reached"),
        (ke.REALM_UNKNOWN, ke.KdcUnreachable, "_kerberos._tcp.corp.example"),
        (ke.CLIENT_REVOKED, ke.KerberosAuthFailed, "disabled or locked out"),
        (ke.FCC_NOFILE, ke.KerberosAuthFailed, "run kinit"),
    ],
)
def test_krb5_codes_become_typed_advice(code: int, cls: type, words: str) -> None:
    for exc in (_Krb5Error(code), _SpnegoError(_SpnegoError(_GSSError(code)))):
        err = ke.classify_kerberos(
            exc, principal="admin@CORP.EXAMPLE", realm="CORP.EXAMPLE", spn="WSMAN/h"
        )
        assert type(err) is cls
        assert words in err.message
        assert SECRET not in err.message and "GSS" not in err.message
    assert issubclass(cls, AuthFailed | Unreachable)  # statuses come from the seam's classes


def test_a_measured_skew_says_which_way() -> None:
    assert "20 min behind the KDC's" in ke.clock_skew("CORP.EXAMPLE", 1200.0).message
    assert "6 min ahead of the KDC's" in ke.clock_skew("CORP.EXAMPLE", -360.0).message


def test_an_ntlm_refusal_hints_at_kerberos() -> None:
    from pypsrp.exceptions import AuthenticationError

    err = classify(
        AuthenticationError("401"), where="h:5985", user="admin", auth="ntlm", timeouts=""
    )
    assert "if the host refuses NTLM, reach it by Kerberos" in err.message
    err = classify(AuthenticationError("401"), where="h", user="a", auth="kerberos", timeouts="")
    assert "refuses NTLM" not in err.message


def test_inventory_kerberos_vars_reach_the_target(tmp_path: Path) -> None:
    (tmp_path / "krb5.conf").write_text("")
    (tmp_path / "inv.yml").write_text(
        "g:\n  hosts:\n    h1:\n"
        "      ansible_connection: psrp\n"
        "      ansible_user: admin\n"
        "      fleet_kerberos_realm: CORP.EXAMPLE\n"
        "      fleet_kerberos_config: krb5.conf\n"
        "      fleet_kerberos_keytab: keys/admin.keytab\n"
        "      fleet_kerberos_ccache: cc/admin\n"
        "      ansible_psrp_negotiate_hostname_override: h1.corp.example\n"
        "      ansible_winrm_kerberos_delegation: true\n"
    )
    t = target_for(load_inventory(tmp_path / "inv.yml").hosts["h1"])
    assert t.options["kerberos_realm"] == "CORP.EXAMPLE"
    assert t.options["kerberos_config"] == str(tmp_path / "krb5.conf")
    assert t.options["kerberos_keytab"] == str(tmp_path / "keys/admin.keytab")
    assert t.options["kerberos_ccache"] == f"FILE:{tmp_path / 'cc/admin'}"
    kopts = kerberos.kerberos_options(t)
    assert (kopts.hostname_override, kopts.delegate) == ("h1.corp.example", True)


# --- the lab's side ---------------------------------------------------------------------


def test_which_lab_hosts_the_inventory_reaches_by_kerberos() -> None:
    names = [f"rds-{i:03d}" for i in range(10)]
    faults = {"rds-003": ("ntlm_disabled",), "rds-007": ("ntlm_disabled", "nla_off")}
    assert set(host_auths("ntlm", names, faults, 1).values()) == {"ntlm"}
    assert set(host_auths("kerberos", names, faults, 1).values()) == {"kerberos"}
    mixed = host_auths("mixed", names, faults, 1)
    assert mixed == host_auths("mixed", names, faults, 1)  # seeded
    assert mixed["rds-003"] == mixed["rds-007"] == "kerberos"  # no other way in
    assert 5 <= sum(a == "kerberos" for a in mixed.values()) <= 7


def test_lab_inventory_vars_for_kerberos_hosts() -> None:
    assert shared_vars("ntlm") == {} and shared_vars("mixed") == {}
    assert shared_vars("kerberos")["fleet_winrm_auth"] == "kerberos"
    own = host_vars("rds-a-001", "kerberos", "mixed")
    assert own["ansible_psrp_negotiate_hostname_override"] == "rds-a-001.fleet.lab"
    assert own["fleet_kerberos_config"] == kdc.CONFIG
    assert host_vars("rds-a-002", "ntlm", "mixed") == {}


def test_truth_for_ntlm_refusal_and_a_skewed_kdc() -> None:
    def fresh() -> dict[str, Any]:
        base = {"status": "findings", "fail": ["security.nla"], "warn": []}
        return {"hosts": {n: dict(base) for n in ("k", "n", "r", "s")}}

    hosts = [
        ("k", "kerberos", ("nla_off",)),
        ("n", "ntlm", ("nla_off",)),
        ("r", "ntlm", ("ntlm_disabled", "nla_off")),  # a lab without a KDC: no way in
        ("s", None, ("nla_off",)),  # an SSH host
    ]
    truth = fresh()
    add_kerberos_truth(truth, hosts, 0)
    assert truth["hosts"]["r"] == {
        "status": "auth_failed",
        "fail": [],
        "warn": [],
        "ntlm": "auth_failed",
    }
    assert truth["hosts"]["k"]["status"] == truth["hosts"]["n"]["status"] == "findings"
    truth = fresh()
    add_kerberos_truth(truth, hosts, 1200)
    assert truth["hosts"]["k"]["status"] == "auth_failed"
    assert truth["hosts"]["n"]["status"] == truth["hosts"]["s"]["status"] == "findings"
    truth = fresh()
    add_kerberos_truth(truth, hosts, 240)  # within Kerberos' 5 minutes
    assert truth["hosts"]["k"]["status"] == "findings"


def test_a_kerberos_lab_without_the_kdc_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kdc, "find_tool", lambda name: None)
    problem = kdc.missing()
    assert problem is not None and "apt-get install krb5-kdc krb5-admin-server" in problem
    with pytest.raises(InputError, match=r"krb5kdc, kdb5_util, kadmin\.local not found"):
        kdc.require()


def test_kadmin_script_keeps_quotes_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = kdc._principals(tmp_path, "labadmin", Secret("pw-1"), ["rds-a-001"])
    assert 'addprinc -pw "pw-1" labadmin' in script
    for service in ("host", "HTTP", "WSMAN"):
        assert f"addprinc -randkey {service}/rds-a-001.fleet.lab" in script
    with pytest.raises(InputError, match="cannot contain quotes"):
        kdc._principals(tmp_path, "labadmin", Secret('p"w'), [])
