"""`cert.valid`: regenerate a self-signed listener certificate, or bind a CA-issued one.

Self-signed (store `Remote Desktop`), or nothing bound: delete it and restart
SessionEnv/TermService, and Windows issues a new one (disruptive, not reversible). CA-issued:
bind the newest valid certificate with the same subject and a private key from
`LocalMachine\\My` (reversible: bind the old one back). No such certificate: blocked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleet.checks.cert import SELF_SIGNED_STORE, find_bound, normalize_thumbprint
from fleet.facts import Certificate
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

BINDING = r"Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash"
NO_REPLACEMENT = "no replacement certificate: request one"


def _label(cert: Certificate) -> str:
    kind = "self-signed" if cert.store.lower() == SELF_SIGNED_STORE.lower() else "CA-issued"
    return f"{kind} {cert.subject}, expires {cert.not_after:%Y-%m-%d} ({cert.thumbprint[:8]}…)"


def _for_host(ctx: Ctx, cert: Certificate) -> bool:
    cn = cert.subject.split(",")[0].strip().lower()
    return cn.removeprefix("cn=").split(".")[0] == ctx.facts.hostname.lower()


def _replacement(ctx: Ctx, subject: str | None, bound: str) -> Certificate | None:
    """The newest certificate with a key, valid past the warn window: from My with the same
    subject, or (when the bound one is gone) any store's certificate for this host."""
    assert ctx.facts.cert is not None
    now = ctx.host_facts.received_utc
    good_until = now + timedelta(days=float(ctx.param("warn_days", 30)))
    candidates = [
        c
        for c in ctx.facts.cert.certificates
        if (c.store.lower() == "my" and c.subject == subject if subject else _for_host(ctx, c))
        and c.has_private_key
        and c.not_before <= now
        and c.not_after > good_until
        and normalize_thumbprint(c.thumbprint) != normalize_thumbprint(bound)
    ]
    return max(candidates, key=lambda c: c.not_after, default=None)


def _bind(thumbprint: str) -> ScriptCall:
    return ScriptCall(script="fix.cert_bind", params={"thumbprint": thumbprint})


def _regenerate(ctx: Ctx, cert: Certificate | None, missing: str | None = None) -> Change:
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


def plan(ctx: Ctx) -> list[Change]:
    facts = ctx.facts.cert
    if facts is None:
        return []
    if not facts.bound_thumbprint:
        return [_regenerate(ctx, None)]
    bound = find_bound(facts.certificates, facts.bound_thumbprint)
    if bound is not None and bound.store.lower() == SELF_SIGNED_STORE.lower():
        return [_regenerate(ctx, bound)]
    old = facts.bound_thumbprint
    new = _replacement(ctx, bound.subject if bound else None, old)
    if bound is None and new is None:  # bound to nothing that exists: let Windows issue one
        return [_regenerate(ctx, None, old)]
    return [
        make_change(
            ctx,
            "certificate",
            BINDING,
            before=old,
            after=new.thumbprint if new else None,
            before_label=_label(bound) if bound else f"{old} (not in any store)",
            after_label=_label(new) if new else "(none available)",
            fix=_bind(new.thumbprint) if new else None,
            undo=_bind(old) if new and bound else None,
            blocked=None if new else NO_REPLACEMENT,
        )
    ]


def depends(ctx: Ctx) -> Any:
    cert = ctx.facts.cert
    if cert is None:
        return None
    return {
        "bound": normalize_thumbprint(cert.bound_thumbprint or ""),
        "certificates": sorted(
            [
                normalize_thumbprint(c.thumbprint),
                c.store,
                c.subject,
                c.not_before.isoformat(),
                c.not_after.isoformat(),
                c.has_private_key,
            ]
            for c in cert.certificates
        ),
    }


FIXES = [FixDef("cert.valid", plan, depends)]
