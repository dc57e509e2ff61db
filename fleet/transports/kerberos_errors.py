"""Kerberos failures as fleet's typed transport errors, each with the advice that fixes it.

The raw errors (pykrb5's `Krb5Error`, python-gssapi's `GSSError`, pyspnego's `SpnegoError`
wrapping either) carry an MIT krb5 error code; that code, never the library's text, decides
the class and the message, so no GSSAPI blob reaches a report and no secret can either.
The classes subclass the seam's own (`AuthFailed`, `Unreachable`), so whatever maps error
classes to host statuses maps these too.
"""

from __future__ import annotations

from fleet.transports.base import AuthFailed, TransportError, Unreachable

# MIT krb5 error codes (krb5/krb5.h, generated from krb5_err.et). A KDC error N is
# ERROR_TABLE_BASE_krb5 (-1765328384) + N, as RFC 4120 section 7.5.9 numbers them.
C_PRINCIPAL_UNKNOWN = -1765328378  # KDC_ERR_C_PRINCIPAL_UNKNOWN (6)
S_PRINCIPAL_UNKNOWN = -1765328377  # KDC_ERR_S_PRINCIPAL_UNKNOWN (7)
CLIENT_REVOKED = -1765328366  # KDC_ERR_CLIENT_REVOKED (18): disabled or locked out
KEY_EXPIRED = -1765328361  # KDC_ERR_KEY_EXPIRED (23): the password expired
PREAUTH_FAILED = -1765328360  # KDC_ERR_PREAUTH_FAILED (24)
BAD_INTEGRITY = -1765328353  # KRB_AP_ERR_BAD_INTEGRITY (31): no pre-auth, wrong key
TKT_EXPIRED = -1765328352  # KRB_AP_ERR_TKT_EXPIRED (32)
SKEW = -1765328347  # KRB_AP_ERR_SKEW (37)
KDC_UNREACH = -1765328228  # KRB5_KDC_UNREACH: no KDC of the realm answered
REALM_UNKNOWN = -1765328230  # KRB5_REALM_UNKNOWN: no KDC known for the realm
REALM_CANT_RESOLVE = -1765328164  # KRB5_REALM_CANT_RESOLVE: the KDC's name did not resolve
CC_NOTFOUND = -1765328243  # KRB5_CC_NOTFOUND: no matching ticket in the cache
FCC_NOFILE = -1765328189  # KRB5_FCC_NOFILE: no ticket cache there
KT_NOTFOUND = -1765328203  # KRB5_KT_NOTFOUND: no key for the principal in the keytab
CONFIG_NODEFREALM = -1765328160  # KRB5_CONFIG_NODEFREALM: a bare user name, no realm

# Kerberos V5 tolerates 5 minutes between a client's clock and the domain controller's
# ("Maximum tolerance for computer clock synchronization", default 5 minutes:
# https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-10/security/threat-protection/security-policy-settings/maximum-tolerance-for-computer-clock-synchronization).
MAX_SKEW_S = 300


class KerberosAuthFailed(AuthFailed):
    """A Kerberos credential was refused (or none could be had). Never retried: a retry with
    a wrong password counts towards the account's lockout threshold."""


class WrongPassword(KerberosAuthFailed):
    pass


class UnknownPrincipal(KerberosAuthFailed):
    pass


class UnknownServicePrincipal(KerberosAuthFailed):
    blames_credential = False  # the host's name (SPN), not the user's secret


class ClockSkew(KerberosAuthFailed):
    blames_credential = False  # this machine's clock, not the user's secret


class KdcUnreachable(Unreachable):
    """No KDC of the realm answered: transient (worth a retry), like an unreachable host."""


def signed_code(code: int) -> int:
    """GSSAPI minor codes arrive unsigned (32 bits); krb5.h spells them signed."""
    return code - (1 << 32) if code >= 1 << 31 else code


def krb5_code(exc: BaseException) -> int | None:
    """The MIT krb5 error code inside `exc` (a Krb5Error, a GSSError, or a SpnegoError that
    wraps one through `base_error` / the exception chain), or None."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        code = getattr(cur, "err_code", None)  # krb5.Krb5Error
        if isinstance(code, int) and code:
            return signed_code(code)
        minor = getattr(cur, "min_code", None)  # gssapi.raw.GSSError
        if isinstance(minor, int) and minor:
            return signed_code(minor)
        base = getattr(cur, "base_error", None)  # spnego.exceptions.SpnegoError
        todo.extend([cur.__cause__, cur.__context__])
        if isinstance(base, BaseException):
            todo.append(base)
    return None


def skew_text(offset_s: float) -> str:
    minutes = abs(offset_s) / 60
    way = "behind" if offset_s > 0 else "ahead of"
    return f"this machine's clock is {minutes:.0f} min {way} the KDC's"


def clock_skew(realm: str, offset_s: float | None = None) -> ClockSkew:
    measured = f" ({skew_text(offset_s)})" if offset_s is not None else ""
    return ClockSkew(
        f"Kerberos rejects clocks more than 5 minutes apart — the seeds' 0x7 cause, on the "
        f"admin's side: the clock of the machine running fleet is off against the KDC of "
        f"{realm}{measured}; set it right (NTP, or `w32tm /resync` / `chronyc makestep`) and "
        "run again. fleet also measures every host's time.skew against this clock."
    )


def classify_kerberos(
    exc: BaseException, *, principal: str, realm: str, spn: str | None = None
) -> TransportError | None:
    """The typed error for a Kerberos failure, or None when `exc` carries no krb5 code."""
    code = krb5_code(exc)
    if code is None:
        return None
    who = f"{principal!r}"
    if code in (PREAUTH_FAILED, BAD_INTEGRITY):
        return WrongPassword(
            f"the KDC of {realm} refused the password of {who} (pre-authentication failed): "
            "fix the password reference (asked once for all hosts: one failed logon)"
        )
    if code == C_PRINCIPAL_UNKNOWN:
        return UnknownPrincipal(
            f"the KDC of {realm} does not know the user {who}: check the user name and its "
            "realm (Kerberos wants user@REALM, the realm in capitals; set fleet_kerberos_realm "
            "for a group of hosts)"
        )
    if code == CONFIG_NODEFREALM:
        return UnknownPrincipal(
            f"no realm for the user {who}: write it as user@REALM or set fleet_kerberos_realm"
        )
    if code == S_PRINCIPAL_UNKNOWN:
        name = spn or "the host's service principal"
        return UnknownServicePrincipal(
            f"the KDC of {realm} has no service principal {name}: Kerberos needs the host's "
            "DNS name, not an IP address; set ansible_psrp_negotiate_hostname_override to the "
            "name its computer account is registered under, or register the SPN "
            "(setspn -S WSMAN/<fqdn> <computer>)"
        )
    if code == SKEW:
        return clock_skew(realm)
    if code == CLIENT_REVOKED:
        return KerberosAuthFailed(
            f"the KDC of {realm} refuses {who}: the account is disabled or locked out"
        )
    if code == KEY_EXPIRED:
        return KerberosAuthFailed(f"the password of {who} has expired in {realm}: change it")
    if code in (KDC_UNREACH, REALM_UNKNOWN, REALM_CANT_RESOLVE):
        return KdcUnreachable(
            f"no KDC of {realm} could be reached (no route, or none known): check krb5.conf "
            f"[realms] {realm} kdc = ... (or fleet_kerberos_config), DNS SRV records "
            f"_kerberos._tcp.{realm.lower()}, and that TCP/UDP 88 is open towards the KDC"
        )
    if code in (CC_NOTFOUND, FCC_NOFILE, TKT_EXPIRED):
        return KerberosAuthFailed(
            f"no valid Kerberos ticket for {who} in the ticket cache: run kinit, or give "
            "fleet a password or keytab"
        )
    if code == KT_NOTFOUND:
        return KerberosAuthFailed(f"the keytab holds no key for {who}")
    return KerberosAuthFailed(
        f"Kerberos authentication as {who} in {realm} failed (krb5 error {code})"
    )
