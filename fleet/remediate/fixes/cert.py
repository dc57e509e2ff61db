"""`cert.valid`: regenerate a self-signed listener certificate, grant NETWORK SERVICE Read on
its key, or bind a CA-issued one - as `fleet.checks.cert_rules.remedy` decides, the same
decision the audit's fix hint shows.

Self-signed (store `Remote Desktop`), or nothing bound: delete it and restart
SessionEnv/TermService, and Windows issues a new one (disruptive, not reversible). Only the
key's ACL wrong: grant NETWORK SERVICE (S-1-5-20) Read, its own change (undo removes exactly
that entry). Otherwise bind the best replacement (`cert_rules.replacement`; a key grant first
when NETWORK SERVICE cannot read its key, planned as its own change); none, or the certificate
template policy rules (binding would pin the certificate and end its renewal): blocked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleet.checks.cert import CHECK, CertParams
from fleet.checks.cert_rules import (
    NETWORK_SERVICE,
    NO_REPLACEMENT,
    find_bound,
    is_self_signed_store,
    normalize_thumbprint,
    remedy,
)
from fleet.facts import Certificate
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

BINDING = r"Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash"


def key_acl_target(thumbprint: str) -> str:
    """The grant's target, as fix-cert-key-acl.ps1 names it."""
    return f"private key of {thumbprint.upper()}: {NETWORK_SERVICE} Read"


def _label(cert: Certificate) -> str:
    kind = "self-signed" if is_self_signed_store(cert) else "CA-issued"
    return f"{kind} {cert.subject}, expires {cert.not_after:%Y-%m-%d} ({cert.thumbprint[:8]}…)"


def _bind(thumbprint: str, *, grant_key_read: bool) -> ScriptCall:
    params = {"thumbprint": thumbprint, "grant_key_read": grant_key_read}
    return ScriptCall(script="fix.cert_bind", params=params)


def _key_acl(thumbprint: str, read: bool) -> ScriptCall:
    return ScriptCall(script="fix.cert_key_acl", params={"thumbprint": thumbprint, "read": read})


def _grant(ctx: Ctx[CertParams], cert: Certificate) -> Change:
    return make_change(
        ctx,
        "certificate",
        key_acl_target(cert.thumbprint),
        op="+",
        before=False,
        after=True,
        before_label=f"{NETWORK_SERVICE} cannot read it ({_label(cert)})",
        after_label=f"Allow {NETWORK_SERVICE} Read on the key file",
        fix=_key_acl(cert.thumbprint, True),
        undo=_key_acl(cert.thumbprint, False),
    )


def _regenerate(
    ctx: Ctx[CertParams], cert: Certificate | None, missing: str | None = None
) -> Change:
    thumb = cert.thumbprint if cert else missing
    return make_change(
        ctx,
        "certificate",
        f"Cert:\\LocalMachine\\Remote Desktop\\{thumb}" if cert else BINDING,
        before=thumb,
        after=None,
        before_label=_label(cert) if cert else f"{missing or '(none)'} bound, not in any store",
        after_label="new self-signed certificate (SessionEnv/TermService restart)",
        fix=ScriptCall(script="fix.cert_regenerate", params={"thumbprint": thumb}),
        disruptive=True,
    )


def _why_none(reason: str | None) -> str:
    if reason == NO_REPLACEMENT:
        return "(none available)"
    return "(not pinned: the certificate template policy selects it)"


def plan(ctx: Ctx[CertParams]) -> list[Change]:
    facts = ctx.facts.cert
    if facts is None:
        return []
    warn = timedelta(days=ctx.params.warn_days)
    r = remedy(facts, ctx.facts.hostname, ctx.host_facts.received_utc, warn)
    old = facts.bound_thumbprint
    if r.action == "regenerate":
        return [_regenerate(ctx, r.bound, None if r.bound else old)]
    if r.action == "grant" and r.cert is not None:
        return [_grant(ctx, r.cert)]
    new = r.cert if r.action == "bind" else None
    bound = find_bound(facts.certificates, old or "")
    changes = [_grant(ctx, new)] if new is not None and new.key_readable is False else []
    changes.append(
        make_change(
            ctx,
            "certificate",
            BINDING,
            before=old,
            after=new.thumbprint if new else None,
            before_label=_label(bound) if bound else f"{old} (not in any store)",
            after_label=_label(new) if new else _why_none(r.reason),
            fix=_bind(new.thumbprint, grant_key_read=True) if new else None,
            undo=_bind(old, grant_key_read=False) if new and bound and old else None,
            blocked=r.reason,
        )
    )
    return changes


def depends(ctx: Ctx[CertParams]) -> Any:
    cert = ctx.facts.cert
    if cert is None:
        return None
    return {
        "bound": normalize_thumbprint(cert.bound_thumbprint or ""),
        "hash_type": cert.hash_type,
        "template_policy": cert.template_policy,
        "certificates": sorted(
            [
                normalize_thumbprint(c.thumbprint),
                c.store,
                c.subject,
                c.not_before.isoformat(),
                c.not_after.isoformat(),
                c.has_private_key,
                sorted(c.eku) if c.eku is not None else None,
                c.key_readable,
            ]
            for c in cert.certificates
        ),
    }


FIXES = [FixDef(CHECK, plan, depends)]
