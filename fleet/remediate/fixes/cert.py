"""`cert.valid`: the route `fleet.checks.cert_rules.remedy` picks, as exact changes (the same
decision the audit's fix hint shows).

- grant: NETWORK SERVICE (S-1-5-20) Read on the bound key, its own change (undo removes
  exactly that entry).
- bind: bind a newer certificate from My (a key grant first when NETWORK SERVICE cannot read
  its key, planned as its own change); undo binds the old one back.
- unpin / reselect (the template policy is set): drop the binding and restart SessionEnv and
  TermService so Windows selects the template's latest certificate (disruptive); an
  enrollment from the policy's template first when no usable certificate from it is known
  (disruptive too: it only serves the restart). Undo of an unpin binds the old one back.
- enroll: `certreq -enroll` from the template, NETWORK SERVICE Read on the new key, bind it
  (`fix.cert_enroll`, one change: the binding, old → the new certificate). Its undo removes
  the enrolled certificate with its key and binds the old one back; which certificate that
  is, only the fix's answer says (`Change.undo_after_param`).
- regenerate: delete the self-signed one (or drop a dangling binding) and restart, so Windows
  issues a new one (disruptive, not reversible).
- blocked: the reason and what to do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleet.checks.cert import CHECK, CertParams
from fleet.checks.cert_rules import (
    NETWORK_SERVICE,
    Remedy,
    find_bound,
    is_self_signed_store,
    normalize_thumbprint,
    remedy,
)
from fleet.checks.cert_template import Enrollment
from fleet.facts import Certificate
from fleet.remediate.fixes.base import Ctx, FixDef, make_change
from fleet.remediate.model import Change, ScriptCall

BINDING = r"Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash"
MACHINE_STORE = r"Cert:\LocalMachine\My"
RESTART = "SessionEnv/TermService restart"


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
        after_label=f"new self-signed certificate ({RESTART})",
        fix=ScriptCall(script="fix.cert_regenerate", params={"thumbprint": thumb}),
        disruptive=True,
    )


def _bound_label(bound: Certificate | None, old: str | None) -> str:
    if bound is not None:
        return _label(bound)
    return f"{old} (not in any store)" if old else "(nothing bound)"


def _enroll_call(ctx: Ctx[CertParams], enroll: Enrollment, *, bind: bool) -> ScriptCall:
    return ScriptCall(
        script="fix.cert_enroll",
        params={
            "action": "enroll",
            "template": enroll.template,
            "template_oid": enroll.template_oid,
            "bind": bind,
            "valid_days": ctx.params.warn_days,
        },
    )


def _remove_call(rebind: str | None) -> ScriptCall:
    """The enrollment's undo: `thumbprint` is filled from the fix's answer (the enrolled one)."""
    return ScriptCall(
        script="fix.cert_enroll",
        params={"action": "remove", "thumbprint": None, "rebind": rebind},
    )


def _enroll_and_bind(
    ctx: Ctx[CertParams], r: Remedy, enroll: Enrollment, old: str | None
) -> Change:
    return make_change(
        ctx,
        "certificate",
        BINDING,
        before=old,
        after=None,  # its thumbprint exists once the CA issued it
        before_label=_bound_label(r.bound, old),
        after_label=f"a new certificate enrolled from {enroll.describe()}, {NETWORK_SERVICE} "
        "Read on its key",
        fix=_enroll_call(ctx, enroll, bind=True),
        undo=_remove_call(old if r.bound is not None else None),
        undo_after_param="thumbprint",
    )


def _reselect(ctx: Ctx[CertParams], r: Remedy, old: str | None) -> list[Change]:
    """Under the template policy: (a key grant for, or an enrollment of) the certificate
    Windows will select, then the binding dropped and the services restarted."""
    policy = ctx.facts.cert.template_policy if ctx.facts.cert else None
    changes = []
    if r.cert is not None and r.cert.key_readable is False:
        changes.append(_grant(ctx, r.cert))
    if r.enroll is not None:
        changes.append(
            make_change(
                ctx,
                "certificate",
                f"{MACHINE_STORE} (template {r.enroll.template})",
                op="+",
                before=None,
                after=None,
                before_label=f"no usable certificate from template {policy!r}",
                after_label=f"a new certificate enrolled from {r.enroll.describe()}, "
                f"{NETWORK_SERVICE} Read on its key (for the restart below)",
                fix=_enroll_call(ctx, r.enroll, bind=False),
                undo=_remove_call(None),
                undo_after_param="thumbprint",
                disruptive=True,  # it only serves the restart: skipped with it
            )
        )
    chosen = f"{_label(r.cert)}, " if r.cert is not None else ""
    pinned = r.action == "unpin"
    changes.append(
        make_change(
            ctx,
            "certificate",
            BINDING,
            op="-",
            before=old,
            after=None,
            before_label=_bound_label(r.bound, old) + (" (pinned)" if pinned else ""),
            after_label=f"not pinned: Windows selects {chosen}the latest-expiring certificate "
            f"from template {policy!r} ({RESTART})",
            fix=ScriptCall(script="fix.cert_unpin", params={"thumbprint": old}),
            undo=_bind(old, grant_key_read=False) if pinned and r.bound and old else None,
            disruptive=True,
        )
    )
    return changes


def plan(ctx: Ctx[CertParams]) -> list[Change]:
    facts = ctx.facts.cert
    if facts is None:
        return []
    warn = timedelta(days=ctx.params.warn_days)
    now = ctx.host_facts.received_utc
    r = remedy(facts, ctx.facts.hostname, now, warn, ctx.params.template)
    old = facts.bound_thumbprint
    if r.action == "regenerate":
        return [_regenerate(ctx, r.bound, None if r.bound else old)]
    if r.action == "grant" and r.cert is not None:
        return [_grant(ctx, r.cert)]
    if r.action in ("unpin", "reselect"):
        return _reselect(ctx, r, old)
    if r.action == "enroll" and r.enroll is not None:
        return [_enroll_and_bind(ctx, r, r.enroll, old)]
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
            before_label=_bound_label(bound, old),
            after_label=_label(new) if new else "(none available)",
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
        "template_policy_oid": cert.template_policy_oid,
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
                c.template_oid,
                c.template_name,
            ]
            for c in cert.certificates
        ),
    }


FIXES = [FixDef(CHECK, plan, depends)]
