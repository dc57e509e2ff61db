"""Kerberos for the WinRM transport: which credential a host uses, obtained once per run.

A password (from the usual references) or a keytab becomes one TGT per principal per run,
kept in an in-memory ccache of this process (an MIT `MEMORY:` cache with a unique name):
every host of that principal, on any worker thread, builds its security context from that
cache by name, so a 1000-host run asks the KDC for one TGT (plus a service ticket per host)
instead of a kinit per host, a wrong password costs one failed logon instead of one per host,
and no process-global `KRB5CCNAME` is ever set. An existing cache (`fleet_kerberos_ccache`,
or the user's default one when no secret is given) is only read.

Which hosts use Kerberos: `auth: kerberos`, and `auth: negotiate` when the inventory names a
Kerberos identity (a `user@REALM`, or any `fleet_kerberos_*` setting); negotiate then still
falls back to NTLM, as Windows' Negotiate does. A negotiate host with no Kerberos identity
is authenticated by NTLM alone: left to itself pyspnego's Negotiate would send the password to
the KDC of the machine's default realm for every host, a realm the inventory never named.

A host addressed by IP needs its DNS name for the service principal
(`ansible_psrp_negotiate_hostname_override`): "Kerberos authentication does not support IP
addresses" (about_Remote_Troubleshooting, "How to use an IP address in a remote command":
https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.core/about/about_remote_troubleshooting).
Credential delegation is off unless `negotiate_delegate` / `fleet_kerberos_delegate` asks.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import ipaddress
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from fleet.errors import InputError
from fleet.logs import get_logger
from fleet.secret import Secret
from fleet.transports.base import Target, TransportError
from fleet.transports.kerberos_errors import (
    MAX_SKEW_S,
    KdcUnreachable,
    KerberosAuthFailed,
    classify_kerberos,
    clock_skew,
)

log = get_logger(__name__)

# The SPN's service part when the inventory names none: WSMAN/<host>, as Ansible's psrp
# plugin asks (ansible_psrp_negotiate_service; pypsrp alone would ask for host/<host>).
DEFAULT_SERVICE = "WSMAN"
DEFAULT_PROFILE = "/etc/krb5.conf"
RENEW_BEFORE_S = 300.0  # get a fresh TGT when the current one has less than this left
TRANSIENT_ERROR_S = 30.0  # how long a "no KDC answered" is reused before asking again
Source = Literal["password", "keytab", "ccache"]


class KerberosOptions(BaseModel):
    """The Kerberos settings of one host (inventory vars, prefixes stripped by `targets`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    keytab: Path | None = Field(default=None, validation_alias=AliasChoices("kerberos_keytab"))
    ccache: str | None = Field(
        default=None, min_length=1, validation_alias=AliasChoices("kerberos_ccache")
    )
    config: Path | None = Field(default=None, validation_alias=AliasChoices("kerberos_config"))
    realm: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[^@\\/\s:]+$",
        validation_alias=AliasChoices("kerberos_realm"),
    )
    hostname_override: str | None = Field(
        default=None,
        min_length=1,
        validation_alias=AliasChoices("negotiate_hostname_override", "kerberos_hostname_override"),
    )
    service: str | None = Field(
        default=None, min_length=1, validation_alias=AliasChoices("negotiate_service")
    )
    delegate: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "negotiate_delegate", "kerberos_delegate", "kerberos_delegation"
        ),
    )
    # Ansible's ansible_winrm_kinit_mode: manual = use the tickets kinit left in the user's
    # cache (the password, if any, is not sent to the KDC); managed = get them from it.
    kinit_mode: Literal["managed", "manual"] | None = None

    @property
    def names_kerberos(self) -> bool:
        return any(v is not None for v in (self.keytab, self.ccache, self.config, self.realm))


@dataclass(frozen=True)
class KerberosPlan:
    """How one host authenticates by Kerberos."""

    principal: str | None  # None: the keytab's first entry, or the cache's own principal
    source: Source
    keytab: Path | None = None
    ccache: str | None = None  # None with source ccache: the user's default cache
    delegate: bool = False
    ntlm_fallback: bool = False  # negotiate with a password: NTLM if Kerberos cannot be had
    hostname: str = ""
    service: str = DEFAULT_SERVICE

    @property
    def realm(self) -> str:
        if self.principal and "@" in self.principal:
            return self.principal.rsplit("@", 1)[1]
        return "the default realm"

    @property
    def spn(self) -> str:
        return f"{self.service}/{self.hostname}"


@functools.cache
def available() -> bool:
    """python-gssapi and pykrb5 (the `kerberos` extra) are importable. Cached: asked for
    every negotiate host, and a module that is not imported yet costs a sys.path scan."""
    return all(importlib.util.find_spec(m) is not None for m in ("gssapi", "krb5"))


def kerberos_options(target: Target) -> KerberosOptions:
    try:
        return KerberosOptions.model_validate(dict(target.options))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(f"host {target.name}: bad Kerberos setting {where!r}: {msg}") from None


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def principal_of(username: str | None, realm: str | None) -> str | None:
    """The Kerberos principal for an inventory user name: `user@REALM` as is, `user` (or
    `DOMAIN\\user`) with `fleet_kerberos_realm` appended; without a realm, `user` is left to
    the default realm of krb5.conf and `DOMAIN\\user` has none (None)."""
    if not username:
        return None
    if "\\" in username:
        user = username.split("\\", 1)[1]
        return f"{user}@{realm}" if realm else None
    if "@" in username or not realm:
        return username
    return f"{username}@{realm}"


def kerberos_plan(target: Target, auth: str) -> KerberosPlan | None:
    """The Kerberos plan for a host, or None when it authenticates another way."""
    if auth not in ("kerberos", "negotiate"):
        return None
    kopts = kerberos_options(target)
    principal = principal_of(target.username, kopts.realm)
    hostname = kopts.hostname_override or target.address
    if auth == "negotiate":
        # Windows' Negotiate uses NTLM for a host named by IP address ("Kerberos
        # authentication does not support IP addresses"), and so does fleet's.
        identity = kopts.names_kerberos or "@" in (target.username or "")
        if not identity or is_ip(hostname) or not available():
            return None
    source: Source
    if kopts.ccache is not None or kopts.kinit_mode == "manual":
        source = "ccache"
    elif kopts.keytab is not None:
        source = "keytab"
    elif target.password is not None and principal is not None:
        source = "password"
    else:
        source = "ccache"  # the user's own default cache (kinit done outside fleet)
    return KerberosPlan(
        principal=principal,
        source=source,
        keytab=kopts.keytab,
        ccache=kopts.ccache,
        delegate=kopts.delegate,
        ntlm_fallback=auth == "negotiate" and target.password is not None,
        hostname=hostname,
        service=kopts.service or DEFAULT_SERVICE,
    )


def check_usable(target: Target, auth: str) -> None:
    """Validate a host's Kerberos settings before anything connects (bad input: exit 2) and
    make its krb5.conf known to this process (see `use_config`)."""
    if auth not in ("kerberos", "negotiate"):
        return
    kopts = kerberos_options(target)
    if auth == "kerberos" and not available():
        raise InputError(
            f"host {target.name}: WinRM auth 'kerberos' needs an optional extra: "
            "pip install 'fleet[kerberos]' (it builds python-gssapi: apt-get install libkrb5-dev)"
        )
    if auth == "kerberos" and target.username and "\\" in target.username and not kopts.realm:
        raise InputError(
            f"host {target.name}: Kerberos needs user@REALM, not DOMAIN\\user "
            "(or set fleet_kerberos_realm)"
        )
    for what, path in (("keytab", kopts.keytab), ("krb5.conf", kopts.config)):
        if path is not None and not path.is_file():
            raise InputError(f"host {target.name}: Kerberos {what} not found: {path}")
    if kopts.config is not None and (auth == "kerberos" or kerberos_plan(target, auth)):
        use_config(kopts.config)


_config_lock = threading.Lock()


def use_config(path: Path) -> None:
    """Put an inventory's krb5.conf first in this process's `KRB5_CONFIG` search path.

    MIT krb5 reads its configuration from the files named by `KRB5_CONFIG` whenever a
    library context is created (GSSAPI creates one per call), and takes no other way in from
    Python. The files are chained, never replaced: the first file that sets a value wins
    and realms from every file are known, so labs and domains of several inventories coexist.
    Called while hosts are validated, before any worker thread starts; a later call with the
    same file changes nothing.
    """
    text = str(path.resolve())
    if ":" in text:
        raise InputError(f"a krb5.conf path cannot contain ':' (KRB5_CONFIG is a list): {text}")
    with _config_lock:
        current = os.environ.get("KRB5_CONFIG")
        parts = [p for p in (current or DEFAULT_PROFILE).split(":") if p]
        if text in parts:
            return
        os.environ["KRB5_CONFIG"] = ":".join([text, *parts])


def _kerberos_password(value: str) -> bytes:
    """UTF-8, with lone surrogates (random machine passwords) as U+FFFD, as Windows does."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value).encode()


@dataclass
class _Ticket:
    ccache: str  # "MEMORY:<unique>"
    principal: str
    endtime: float
    handle: Any = None  # (krb5 context, ccache) to destroy at the end of the run

    @property
    def fresh(self) -> bool:
        return self.endtime - time.time() > RENEW_BEFORE_S


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ticket: _Ticket | None = None
    error: TransportError | None = None
    error_at: float = 0.0
    checked: bool = False  # an existing cache was checked once


def _again(err: TransportError) -> TransportError:
    """A fresh exception with the same class and message (one per raising thread)."""
    return type(err)(err.message)


class Tickets:
    """The run's Kerberos credentials, one entry per principal and secret. Thread-safe: the
    first host of a principal acquires, the others wait for it and share the result (or the
    failure: a wrong password is tried once per run, never once per host)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], _Entry] = {}

    def credentials(self, plan: KerberosPlan, password: Secret | None) -> list[Any]:
        """pyspnego credentials for `plan` (blocking: runs on a WinRM worker thread)."""
        import spnego

        secret = password if plan.source == "password" else None
        key = (plan.source, plan.principal, plan.keytab, plan.ccache, plan.delegate, secret)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        with entry.lock:
            if entry.error is not None:
                transient = isinstance(entry.error, KdcUnreachable)
                if not transient or time.monotonic() - entry.error_at < TRANSIENT_ERROR_S:
                    raise _again(entry.error)
                entry.error = None
            try:
                if plan.source == "ccache":
                    if not entry.checked:
                        _check_cache(plan)
                        entry.checked = True
                    if plan.ccache is None:  # the user's default cache
                        return [spnego.CredentialCache(username=plan.principal)]
                    return [spnego.KerberosCCache(ccache=plan.ccache, principal=plan.principal)]
                if entry.ticket is None or not entry.ticket.fresh:
                    entry.ticket = _acquire(plan, secret)
            except TransportError as err:
                entry.error, entry.error_at = err, time.monotonic()
                raise
            ticket = entry.ticket
        return [spnego.KerberosCCache(ccache=ticket.ccache, principal=ticket.principal)]

    def close(self) -> None:
        """Destroy the run's in-memory caches (the tickets leave the process with them)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            handle = entry.ticket.handle if entry.ticket else None
            if handle is None:
                continue
            import krb5

            try:
                krb5.cc_destroy(*handle)
            except krb5.Krb5Error as exc:
                log.debug("kerberos: destroying a memory cache failed", error=str(exc))


def _acquire(plan: KerberosPlan, password: Secret | None) -> _Ticket:
    """One TGT for `plan` (password or keytab) into a new in-memory cache."""
    import krb5

    try:
        ctx = krb5.init_context()
        principal = None
        if plan.principal:
            principal = krb5.parse_name_flags(ctx, plan.principal.encode())
        opt = krb5.get_init_creds_opt_alloc(ctx)
        krb5.get_init_creds_opt_set_canonicalize(opt, True)
        krb5.get_init_creds_opt_set_forwardable(opt, plan.delegate)
        if plan.source == "keytab":
            keytab = krb5.kt_resolve(ctx, str(plan.keytab).encode())
            if principal is None:
                first = next(iter(keytab), None)
                if first is None:
                    raise KerberosAuthFailed(f"the keytab {plan.keytab} is empty")
                principal = copy.copy(first.principal)
            creds = krb5.get_init_creds_keytab(ctx, principal, opt, keytab=keytab)
        else:
            if principal is None or password is None:
                raise KerberosAuthFailed("Kerberos needs a user name and a password or keytab")
            creds = krb5.get_init_creds_password(
                ctx, principal, opt, password=_kerberos_password(password.reveal())
            )
        name = krb5.unparse_name_flags(ctx, creds.client).decode()
        realm = name.rsplit("@", 1)[-1]
        # The ticket's times are the KDC's clock: a client clock off by more than the
        # tolerance is refused by Kerberos (MIT quietly corrects its own requests with
        # kdc_timesync, but every host's time.skew is measured against this clock too).
        offset = creds.times.authtime - time.time()
        if abs(offset) > MAX_SKEW_S:
            raise clock_skew(realm, offset)
        cache = krb5.cc_new_unique(ctx, b"MEMORY")
        krb5.cc_initialize(ctx, cache, creds.client)
        krb5.cc_store_cred(ctx, cache, creds)
    except krb5.Krb5Error as exc:
        raise _typed_or_generic(exc, plan) from None
    ccache = (cache.cache_type or b"MEMORY").decode() + ":" + (cache.name or b"").decode()
    return _Ticket(ccache, name, float(creds.times.endtime), (ctx, cache))


def _check_cache(plan: KerberosPlan) -> None:
    """An existing cache holds a ticket that has not expired (else: run kinit)."""
    import gssapi
    import gssapi.raw

    store: dict[bytes | str, bytes | str] | None = None
    if plan.ccache:
        store = {b"ccache": plan.ccache.encode()}
    name = gssapi.Name(plan.principal, gssapi.NameType.user) if plan.principal else None
    try:
        creds = gssapi.Credentials(name=name, usage="initiate", store=store)
        lifetime = creds.lifetime
    except gssapi.raw.GSSError as exc:
        raise _typed_or_generic(exc, plan) from None
    if not lifetime:
        where = plan.ccache or "the default ticket cache"
        raise KerberosAuthFailed(f"the Kerberos ticket in {where} has expired: run kinit")


def _typed_or_generic(exc: BaseException, plan: KerberosPlan) -> TransportError:
    who = plan.principal or "(the cache's principal)"
    return classify_kerberos(exc, principal=who, realm=plan.realm, spn=plan.spn) or (
        KerberosAuthFailed(f"Kerberos authentication as {who!r} failed")
    )


def typed_failure(exc: BaseException, target: Target, auth: str) -> TransportError | None:
    """A connect failure of a Kerberos host (a service ticket refused, the KDC gone) as a
    typed error with its advice; None when `exc` is not a Kerberos failure."""
    if isinstance(exc, TransportError):
        return None
    try:
        plan = kerberos_plan(target, auth)
    except InputError:
        return None
    if plan is None:
        return None
    who = plan.principal or "(the cache's principal)"
    return classify_kerberos(exc, principal=who, realm=plan.realm, spn=plan.spn)


_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class AuthSpec:
    """How one host authenticates: the pyspnego (or Basic / certificate) arguments both WinRM
    clients build their security context from. `username` is a user name, or pyspnego
    credential objects (Kerberos caches, then a password for NTLM fallback)."""

    protocol: str  # ntlm | negotiate | kerberos | credssp | basic | certificate
    username: Any
    password: str | None = field(default=None, repr=False)
    hostname: str | None = None  # the SPN's host; None: the address
    service: str = DEFAULT_SERVICE
    delegate: bool = False


def auth_spec(target: Target, auth: str, tickets: Tickets) -> AuthSpec:
    """The authentication of one host (the hook where WinRM chooses how a host
    authenticates). Blocking for a Kerberos host (the run's TGT may be fetched here)."""
    password = target.password.reveal() if target.password is not None else None
    plain = AuthSpec(auth, target.username, password)
    plan = kerberos_plan(target, auth)
    if plan is None:
        if auth == "negotiate" and available():
            # No Kerberos identity: no AS-REQ to a realm nobody named.
            return AuthSpec("ntlm", target.username, password)
        return plain
    try:
        creds = tickets.credentials(plan, target.password)
    except TransportError as err:
        if not plan.ntlm_fallback:
            raise
        _warn_once(plan, err)
        return AuthSpec("ntlm", target.username, password)
    if plan.ntlm_fallback:
        import spnego

        creds = [*creds, spnego.Password(username=target.username or "", password=password or "")]
    return AuthSpec(
        "kerberos" if auth == "kerberos" else "negotiate",
        creds,
        None,
        hostname=plan.hostname,
        service=plan.service,
        delegate=plan.delegate,
    )


def wsman_auth(target: Target, auth: str, tickets: Tickets) -> dict[str, Any]:
    """`auth_spec` as the authentication arguments of pypsrp's `WSMan`. Runs on the host's
    worker thread."""
    spec = auth_spec(target, auth, tickets)
    kwargs: dict[str, Any] = {
        "auth": spec.protocol,
        "username": spec.username,
        "password": spec.password,
    }
    if spec.hostname is not None:
        kwargs.update(
            negotiate_delegate=spec.delegate,
            negotiate_hostname_override=spec.hostname,
            negotiate_service=spec.service,
        )
    return kwargs


def _warn_once(plan: KerberosPlan, err: TransportError) -> None:
    key = f"{plan.principal}:{type(err).__name__}"
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("kerberos: no ticket, negotiate falls back to NTLM", reason=err.message)
