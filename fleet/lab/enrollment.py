"""The lab's enterprise CA, as fix-cert-enroll.ps1 meets it through `certreq -enroll`.

A host's domain (`HostState.pki`, fleet.lab.state.LabPki) has an enterprise CA only when the
lab was started with `--ca-template NAME`, and that CA issues from NAME alone. certreq fails,
as on Windows, with its exit code (an HRESULT) and a message in the host's display language:
- no enterprise CA answers: RPC_S_SERVER_UNAVAILABLE 0x800706BA;
- a template the CA does not issue: CERTSRV_E_UNSUPPORTED_CERT_TYPE 0x80094800;
- the CA refuses the host (`enroll_denied`): CERTSRV_E_TEMPLATE_DENIED 0x80094012.
A certificate it issues is a real one (fleet.lab.rdp_certs signs it with the lab's issuing CA
key), to this host, from the template (its OID in the Certificate Template Information
extension), Client and Server Authentication, and a machine key only SYSTEM and
Administrators may read, as a new machine key has: the script grants NETWORK SERVICE Read.
fleet never parses certreq's words; they are rendered per locale to keep it honest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.facts import Certificate
from fleet.lab.fixes import BINDING, _bound, _change, _keyed_cert, noop_aware
from fleet.lab.model import LabHost
from fleet.lab.rdp_certs import realize
from fleet.lab.responder import Handler, HandlerError
from fleet.lab.state import (
    CLIENT_AUTH,
    DOMAIN,
    HASH_CUSTOM,
    ISSUING_CA,
    HostState,
    host_rng,
    thumbprint,
)

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
RD_AUTH = "1.3.6.1.4.1.311.54.1.2"
# The same patterns as the script's.
OID = re.compile(r"[0-2](\.(0|[1-9][0-9]{0,19})){1,63}")
NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9 ._()-]{0,62}[A-Za-z0-9._()-]|[A-Za-z0-9])")
RPC_UNAVAILABLE = 0x800706BA
UNSUPPORTED_CERT_TYPE = 0x80094800
TEMPLATE_DENIED = 0x80094012
ISSUED_DAYS = 365
BACKDATE = timedelta(minutes=10)  # AD CS sets NotBefore a little in the past (clock skew)
# certreq's words for these errors. The lab's rendering in each display language (close to,
# not copied from, Windows' strings): fleet must never read them, only pass them on.
_WORDS: Mapping[str, Mapping[int, str]] = {
    "en-US": {
        RPC_UNAVAILABLE: "The RPC server is unavailable.",
        UNSUPPORTED_CERT_TYPE: "The requested certificate template is not supported by this CA.",
        TEMPLATE_DENIED: "The permissions on the certificate template do not allow the current "
        "user to enroll for this type of certificate.",
    },
    "de-DE": {
        RPC_UNAVAILABLE: "Der RPC-Server ist nicht verfügbar.",
        UNSUPPORTED_CERT_TYPE: "Die angeforderte Zertifikatvorlage wird von dieser "
        "Zertifizierungsstelle nicht unterstützt.",
        TEMPLATE_DENIED: "Die Berechtigungen für die Zertifikatvorlage lassen nicht zu, dass "
        "sich der aktuelle Benutzer für diesen Zertifikattyp registriert.",
    },
    "fr-FR": {
        RPC_UNAVAILABLE: "Le serveur RPC n’est pas disponible.",
        UNSUPPORTED_CERT_TYPE: "Le modèle de certificat demandé n’est pas pris en charge par "
        "cette autorité de certification.",
        TEMPLATE_DENIED: "Les autorisations du modèle de certificat ne permettent pas à "
        "l’utilisateur actuel de s’inscrire pour ce type de certificat.",
    },
    "ja-JP": {
        RPC_UNAVAILABLE: "RPC サーバーを利用できません。",
        UNSUPPORTED_CERT_TYPE: "要求された証明書テンプレートはこの CA ではサポートされていません。",
        TEMPLATE_DENIED: "証明書テンプレートのアクセス許可では、現在のユーザーはこの種類の証明書を"
        "登録できません。",
    },
}
_NAMES = {
    RPC_UNAVAILABLE: "RPC_S_SERVER_UNAVAILABLE",
    UNSUPPORTED_CERT_TYPE: "CERTSRV_E_UNSUPPORTED_CERT_TYPE",
    TEMPLATE_DENIED: "CERTSRV_E_TEMPLATE_DENIED",
}


def certreq_failure(state: HostState, request: str, code: int) -> HandlerError:
    """The error fix-cert-enroll.ps1 throws for certreq's exit code and output."""
    words = _WORDS.get(state.locale, _WORDS["en-US"])[code]
    signed = code - (1 << 32)
    text = f"{words} 0x{code:x} ({signed} {_NAMES[code]})"
    return HandlerError(
        f"certreq -enroll for template '{request}' failed (exit 0x{code:08X}): {text}"
    )


def _template_of(
    state: HostState, template: str, template_oid: str | None
) -> tuple[str, str | None]:
    """(what certreq gets, the OID to find the new certificate by), as the script works them
    out with Active Directory (Find-AdTemplate)."""
    if OID.fullmatch(template):
        name = next((n for n, o in state.pki.templates.items() if o == template), None)
        return name or template, template_oid or template
    return template, template_oid or state.pki.oid(template)


def _from_template(cert: Certificate, names: tuple[str, ...], template_oid: str | None) -> bool:
    """Find-Usable's Test-FromTemplate: decided by what the certificate carries, its template's
    OID (version 2+, compared when the template's OID is known) or only its name (version 1)."""
    if cert.template_oid is not None:
        return template_oid is not None and cert.template_oid == template_oid
    wanted = {n.casefold() for n in names}
    return cert.template_name is not None and cert.template_name.casefold() in wanted


def _usable(
    state: HostState, names: tuple[str, ...], template_oid: str | None, days: int, now: datetime
) -> Certificate | None:
    """An earlier run's certificate (Find-Usable): from the template, for this host, its key,
    a listener EKU, valid for more than `days`."""
    host = state.hostname.lower()
    found = [
        c
        for c in state.cert.certificates
        if c.store == "My"
        and c.has_private_key
        and c.not_before <= now
        and c.not_after > now + timedelta(days=days)
        and set(c.eku or ()) & {SERVER_AUTH, RD_AUTH}
        and _from_template(c, names, template_oid)
        and c.subject.lower().removeprefix("cn=").split(".")[0] == host
    ]
    return max(found, key=lambda c: c.not_after, default=None)


def _issue(host: LabHost, request: str, now: datetime) -> Certificate:
    """What the enterprise CA answers `certreq -enroll ... request` with."""
    state = host.state
    pki = state.pki
    if pki.issuing is None:
        raise certreq_failure(state, request, RPC_UNAVAILABLE)
    if pki.oid(request) != pki.oid(pki.issuing):
        raise certreq_failure(state, request, UNSUPPORTED_CERT_TYPE)
    if pki.denied:
        raise certreq_failure(state, request, TEMPLATE_DENIED)
    rng = host_rng(int(now.timestamp() * 1000), host.name, "enroll")
    fqdn = f"{state.hostname.lower()}.{DOMAIN}"
    fact = Certificate(
        thumbprint=thumbprint(rng),
        store="My",
        subject=f"CN={fqdn}",
        issuer=ISSUING_CA,
        not_before=now - BACKDATE,
        not_after=now + timedelta(days=ISSUED_DAYS),
        has_private_key=True,
        eku=[CLIENT_AUTH, SERVER_AUTH],
        key_readable=False,
        template_oid=pki.oid(pki.issuing),
    )
    state.cert = state.cert.model_copy(update={"certificates": [*state.cert.certificates, fact]})
    real = realize(state)[fact.thumbprint]
    return next(c for c in state.cert.certificates if c.thumbprint == real)


def _replace(state: HostState, old: Certificate, **update: Any) -> Certificate:
    new = old.model_copy(update=update)
    certs = [new if c is old else c for c in state.cert.certificates]
    state.cert = state.cert.model_copy(update={"certificates": certs})
    return new


def _enroll(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    template = params.get("template")
    if not isinstance(template, str) or not (OID.fullmatch(template) or NAME.fullmatch(template)):
        raise HandlerError(
            f"template must be a certificate template name or a dotted OID, not '{template}'"
        )
    oid = params.get("template_oid")
    if oid is not None and (not isinstance(oid, str) or not OID.fullmatch(oid)):
        raise HandlerError(f"template_oid must be a dotted OID, not '{oid}'")
    days = params.get("valid_days") or 0
    if not isinstance(days, int) or isinstance(days, bool):
        raise HandlerError("Cannot convert value to type System.Int32 (valid_days).")
    bind = params.get("bind") is True
    state = host.state
    now = datetime.now(UTC)
    request, oid = _template_of(state, template, oid)
    cert = _usable(state, (template, request), oid, days, now)
    enrolled = cert is None
    if cert is None:
        cert = _issue(host, request, now)
    if cert.key_readable is False:  # Grant-NetworkServiceRead
        cert = _replace(state, cert, key_readable=True)
    made = cert.thumbprint if enrolled else None  # only this goes to the undo
    before = _bound(state)
    if bind:
        if before != cert.thumbprint:
            state.cert = state.cert.model_copy(
                update={"bound_thumbprint": cert.thumbprint, "hash_type": HASH_CUSTOM}
            )
        answer = _change(BINDING, before, _bound(state))
        answer["changes"][0]["made"] = made
        return answer
    target = f"Cert:\\LocalMachine\\My (template {template})"
    return {
        "changes": [
            {
                "target": target,
                "before": None,
                "after": cert.thumbprint,
                "changed": enrolled,
                "made": made,
            }
        ]
    }


def _remove(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    thumb, rebind = params.get("thumbprint"), params.get("rebind")
    for name, value in (("thumbprint", thumb), ("rebind", rebind)):
        if value is not None and not isinstance(value, str):
            raise HandlerError(f"Cannot process argument '{name}': expected a string or null.")
    state = host.state
    thumb, rebind = (thumb or "").upper(), (rebind or "").upper()
    before = _bound(state)
    if rebind and before != rebind:
        try:
            _keyed_cert(state, rebind)
        except HandlerError:
            raise HandlerError(
                f"no certificate {rebind} with a private key to bind again"
            ) from None
        state.cert = state.cert.model_copy(
            update={"bound_thumbprint": rebind, "hash_type": HASH_CUSTOM}
        )
    mine = [c for c in state.cert.certificates if c.store == "My" and c.thumbprint.upper() == thumb]
    present = bool(thumb and mine)
    if present and _bound(state) != thumb:
        certs = [c for c in state.cert.certificates if c not in mine]
        state.cert = state.cert.model_copy(update={"certificates": certs})
    still = any(c.store == "My" and c.thumbprint.upper() == thumb for c in state.cert.certificates)
    after = _bound(state)
    target = f"Cert:\\LocalMachine\\My\\{thumb}"
    changed = (present != (still and bool(thumb))) or before != after
    return {"changes": [{"target": target, "before": before, "after": after, "changed": changed}]}


def fix_cert_enroll(host: LabHost, params: dict[str, Any]) -> Mapping[str, Any]:
    """fix-cert-enroll.ps1 version 2: `enroll` (certreq, key grant, bind) or `remove` (its
    undo). A failure after the CA issued leaves nothing behind, as the script's clean-up."""
    action = params.get("action")
    if action == "enroll":
        return _enroll(host, params)
    if action == "remove":
        return _remove(host, params)
    raise HandlerError(f"action must be enroll or remove, not '{action}'")


ENROLL_HANDLERS: Mapping[tuple[str, int], Handler] = {
    ("fix.cert_enroll", 2): noop_aware(fix_cert_enroll),
}
