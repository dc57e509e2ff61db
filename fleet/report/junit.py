"""JUnit XML for CI test reporters: a testsuite per host, a testcase per check.

Valid against both schemas CI tools use (Jenkins xunit's junit-10.xsd and the stricter
Ant/"windyroad" JUnit.xsd): every testsuite has properties, system-out and system-err, a
timezone-less UTC timestamp, and `package`/`id`; <testsuites> carries no attributes.
fail → <failure>, error → <error>, skip → <skipped>, waived → <skipped> with the waiver's
reason; warn passes (noted in system-out). A check's benchmark control ids are a suite
property (`controls.<check id>`) and start its failure, error or skipped message.
An unfinished host is one testcase `connection` with an <error>.
Text from hosts is untrusted: characters XML 1.0 cannot carry are dropped.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # building only; nothing is parsed here
from typing import Any

from fleet.results import CheckResult, CheckStatus, HostResult, RunResult
from fleet.store.drift import Drift

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _clean(text)
    return element


def _message(check: CheckResult) -> str:
    return f"[{check.controls_text()}] {check.message}" if check.controls else check.message


def _body(check: CheckResult) -> str:
    parts = [_message(check)]
    if check.evidence:
        parts.append("evidence: " + json.dumps(check.evidence, indent=2, default=str))
    if check.fix:
        parts.append(f"fix: {check.fix}")
    return "\n".join(parts)


def _testcase(suite: ET.Element, host: str, check: CheckResult) -> None:
    case = _sub(suite, "testcase", classname=host, name=check.id, time="0")
    if check.status is CheckStatus.FAIL:
        _sub(case, "failure", _body(check), type="fail", message=_message(check))
    elif check.status is CheckStatus.ERROR:
        _sub(case, "error", _body(check), type="error", message=_message(check))
    elif check.status in (CheckStatus.SKIP, CheckStatus.WAIVED):
        _sub(case, "skipped", message=_message(check))


def _suite(parent: ET.Element, index: int, host: HostResult, result: RunResult) -> None:
    checks = host.checks
    unfinished = host.status.unfinished
    counts: dict[str, Any] = {
        "tests": 1 if unfinished else len(checks),
        "failures": sum(c.status is CheckStatus.FAIL for c in checks),
        "errors": 1 if unfinished else sum(c.status is CheckStatus.ERROR for c in checks),
        "skipped": sum(c.status in (CheckStatus.SKIP, CheckStatus.WAIVED) for c in checks),
    }
    started = result.run.started.replace(microsecond=0, tzinfo=None)
    suite = _sub(
        parent,
        "testsuite",
        name=host.name or "?",
        package=f"fleet.{result.run.playbook or 'audit'}",
        id=str(index),
        hostname=host.address or host.name or "?",
        timestamp=started.isoformat(),
        time=f"{host.duration_s:.3f}",
        **{k: str(v) for k, v in counts.items()},
    )
    props = _sub(suite, "properties")
    for name, value in (
        ("run_id", result.run.id),
        ("address", host.address),
        ("transport", host.transport),
        ("status", host.status.value),
    ):
        _sub(props, "property", name=name, value=value)
    for check in checks:
        if check.controls:
            _sub(props, "property", name=f"controls.{check.id}", value=check.controls_text())
    if unfinished:
        case = _sub(suite, "testcase", classname=host.name, name="connection", time="0")
        message = host.error or host.status.value
        _sub(case, "error", message, type=host.status.value, message=message)
    for check in checks:
        _testcase(suite, host.name, check)
    warnings = [f"warn {c.id}: {c.message}" for c in checks if c.status is CheckStatus.WARN]
    _sub(suite, "system-out", "\n".join([f"host status: {host.status.value}", *warnings]))
    _sub(suite, "system-err", host.error or "")


def render(result: RunResult, *, drift: Drift | None = None) -> str:
    """JUnit XML. `drift` is accepted for a uniform signature; JUnit has no place for it."""
    root = ET.Element("testsuites")
    for index, host in enumerate(result.hosts):
        _suite(root, index, host, result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
