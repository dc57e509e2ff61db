"""Playbook loading: the shipped playbooks, params layering, and every class of bad input."""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path

import pytest

from fleet.checks.evaluate import evaluate_host
from fleet.checks.params import resolve_params
from fleet.checks.registry import CHECKS
from fleet.errors import InputError
from fleet.facts import HostFacts
from fleet.playbook.loader import default_playbook, load_playbook
from fleet.results import CheckStatus
from fleet.scripts import playbooks_dir

FACTS = Path(__file__).parents[1] / "fixtures" / "facts"
HEADER = "# fleet-script: custom.disk\n# fleet-version: 1\nparam([string]$ParamsJson)\n"


def write(folder: Path, text: str, name: str = "pb.yml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_playbook(path)
    return info.value


def test_default_playbook_has_every_check_with_its_defaults() -> None:
    playbook = default_playbook()
    assert list(playbook.checks) == list(CHECKS)
    path = playbooks_dir() / "rdp-health.yml"
    assert playbook.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # Spelled-out params equal each model's defaults, so the file documents them truly.
    for check_id, params in playbook.checks.items():
        model = CHECKS[check_id].params_model
        assert model.model_validate(params) == model(), check_id
    assert playbook.sections() == set().union(*(c.sections for c in CHECKS.values()))


def test_example_custom_playbook_loads_its_script() -> None:
    playbook = load_playbook(playbooks_dir() / "example-custom.yml")
    (check,) = playbook.custom
    assert check.id == "custom.pagefile" == check.script.id
    assert check.script.path == (playbooks_dir() / "scripts" / "custom-pagefile.ps1").resolve()
    assert playbook.sections() == CHECKS["rdp.listener"].sections | CHECKS["cert.valid"].sections


def test_params_layering(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: t
        checks:
          time.skew: {warn_s: 30}
          sessions.stale:
        """,
    )
    playbook = load_playbook(path)
    base = resolve_params(playbook, {})
    assert base["time.skew"].model_dump() == {"max_s": 300.0, "warn_s": 30.0, "ntp_peers": []}
    host = resolve_params(playbook, {"time.skew": {"max_s": 120}, "cert.valid": {"warn_days": 1}})
    assert host["time.skew"].model_dump() == {"max_s": 120.0, "warn_s": 30.0, "ntp_peers": []}
    assert set(host) == {"time.skew", "sessions.stale"}  # cert.valid is not in this playbook


def test_resolved_params_are_cached_on_their_playbook_only() -> None:
    """No module-global cache: a playbook loaded again (another run, or the same file
    edited) resolves afresh, and one run's cache ends with its playbook."""
    first, second = default_playbook(), default_playbook()
    assert first.sha256 == second.sha256
    overrides = {"time.skew": {"max_s": 120}}
    resolved = resolve_params(first, overrides)
    assert resolve_params(first, {"time.skew": {"max_s": 120}}) is resolved
    assert len(first.resolved_params) == 1 and not second.resolved_params
    assert resolve_params(second, overrides) is not resolved
    assert resolve_params(second, overrides) == resolved


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"time.skew": {"max_s": "soon"}}, r"fleet_check_params\[time.skew\]: max_s: .*number"),
        ({"time.skew": {"warn_s": 400}}, r"warn_s \(400.0\) must not exceed max_s"),
        ({"time.skew": {"max": 1}}, r"unknown key 'max' \(did you mean 'max_s'\?\)"),
        ({"time.skwe": {}}, r"unknown check 'time.skwe' \(did you mean 'time.skew'\?\)"),
        ({"time.skew": 5}, r"must be a mapping"),
    ],
)
def test_bad_override_names_the_check(overrides: dict[str, object], pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        resolve_params(default_playbook(), overrides)  # type: ignore[arg-type]


def test_evaluate_host_in_playbook_order_with_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: t
        checks:
          security.layer:
          rdp.listener: {port: 3390}
        """,
    )
    host = HostFacts.model_validate_json((FACTS / "healthy.json").read_text())
    playbook = load_playbook(path)
    results = evaluate_host(playbook, host, {})
    assert [(r.id, r.status) for r in results] == [
        ("security.layer", CheckStatus.PASS),
        ("rdp.listener", CheckStatus.FAIL),
    ]
    results = evaluate_host(playbook, host, {"rdp.listener": {"port": 3389}})
    assert results[1].status is CheckStatus.PASS


# Each bad playbook: text, the line the error must name, and a pattern for the message.
BAD: list[tuple[str, str, int, str]] = [
    (
        "unknown top-level key",
        """
        name: t
        chekcs:
          rdp.listener:
        """,
        2,
        r"unknown key 'chekcs' \(did you mean 'checks'\?\)",
    ),
    (
        "unknown check",
        """
        name: t
        checks:
          rdp.listener:
          secruity.nla:
        """,
        4,
        r"unknown check 'secruity.nla' \(did you mean 'security.nla'\?\)",
    ),
    (
        "unknown param",
        """
        name: t
        checks:
          cert.valid:
            warn_dayz: 3
        """,
        4,
        r"unknown key 'warn_dayz' in checks.cert.valid \(did you mean 'warn_days'\?\)",
    ),
    (
        "bad param type",
        """
        name: t
        checks:
          time.skew:
            warn_s: 10
            max_s: five minutes
        """,
        5,
        r"checks.time.skew.max_s: Input should be a valid number.*'five minutes'",
    ),
    (
        "bad param value",
        """
        name: t
        checks:
          security.layer:
            allowed: [3]
        """,
        4,
        r"checks.security.layer.allowed.0:",
    ),
    (
        "params not a mapping",
        """
        name: t
        checks:
          security.nla: 1
        """,
        3,
        r"checks.security.nla: .*dictionary",
    ),
    (
        "missing name",
        """
        checks:
          rdp.listener:
        """,
        1,
        r"name: Field required",
    ),
    (
        "no checks",
        """
        name: t
        """,
        0,
        r"no checks",
    ),
    (
        "duplicate key",
        """
        name: t
        checks:
          rdp.listener:
          rdp.listener: {port: 1}
        """,
        4,
        r"duplicate key 'rdp.listener'",
    ),
    (
        "yaml syntax",
        """
        name: t
        checks: [rdp.listener
        """,
        3,
        r"invalid YAML",
    ),
    (
        "custom script outside folder",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: ../outside.ps1
            expect: [{field: free_gb, op: gt, value: 10}]
        """,
        5,
        r"custom check custom.disk: script '../outside.ps1' is outside the playbook's folder",
    ),
    (
        "custom script absolute",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: /etc/passwd
            expect: [{field: free_gb, op: gt, value: 10}]
        """,
        5,
        r"outside the playbook's folder",
    ),
    (
        "custom script missing header",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: scripts/no-header.ps1
            expect: [{field: free_gb, op: gt, value: 10}]
        """,
        5,
        r"missing '# fleet-script: ID' / '# fleet-version: N' header",
    ),
    (
        "custom script missing",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: scripts/nope.ps1
            expect: [{field: free_gb, op: gt, value: 10}]
        """,
        5,
        r"cannot read script",
    ),
    (
        "custom script id mismatch",
        """
        name: t
        custom:
          - id: custom.space
            title: Disk
            script: scripts/disk.ps1
            expect: [{field: free_gb, op: gt, value: 10}]
        """,
        5,
        r"declares id 'custom.disk', expected 'custom.space'",
    ),
    (
        "custom id not custom.*",
        """
        name: t
        custom:
          - id: disk
            title: Disk
            script: scripts/disk.ps1
            expect: [{field: free_gb, op: gt, value: 10}]
        """,
        3,
        r"custom.0.id: String should match pattern",
    ),
    (
        "custom unknown key",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: scripts/disk.ps1
            expect:
              - {field: free_gb, op: gt, value: 10, severty: warn}
        """,
        7,
        r"unknown key 'severty' in custom.0.expect.0 \(did you mean 'severity'\?\)",
    ),
    (
        "custom op needs value",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: scripts/disk.ps1
            expect:
              - field: free_gb
                op: gt
        """,
        7,
        r"'gt' needs a value",
    ),
    (
        "custom bad regex",
        """
        name: t
        custom:
          - id: custom.disk
            title: Disk
            script: scripts/disk.ps1
            expect:
              - {field: name, op: matches, value: "("}
        """,
        7,
        r"invalid regular expression",
    ),
    (
        "custom duplicate id",
        """
        name: t
        custom:
          - {id: custom.disk, title: D, script: scripts/disk.ps1, expect: [{field: a, op: exists}]}
          - {id: custom.disk, title: D, script: scripts/disk.ps1, expect: [{field: a, op: exists}]}
        """,
        4,
        r"duplicate custom check id 'custom.disk'",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "pattern"), [pytest.param(t, ln, p, id=n) for n, t, ln, p in BAD]
)
def test_bad_playbook_names_file_and_line(
    tmp_path: Path, text: str, line: int, pattern: str
) -> None:
    folder = tmp_path / "pb"
    (folder / "scripts").mkdir(parents=True)
    (folder / "scripts" / "disk.ps1").write_text(HEADER)
    (folder / "scripts" / "no-header.ps1").write_text("Get-Date\n")
    (tmp_path / "outside.ps1").write_text(HEADER)
    path = write(folder, text)
    err = error_of(path)
    message = str(err)
    assert "\n" not in message
    assert err.path == str(path)
    if line:
        assert err.line == line
        assert message.startswith(f"{path}:{line}: ")
    assert re.search(pattern, message), message


def test_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "pb"
    folder.mkdir()
    (tmp_path / "outside.ps1").write_text(HEADER)
    (folder / "link.ps1").symlink_to(tmp_path / "outside.ps1")
    path = write(
        folder,
        """
        name: t
        custom:
          - {id: custom.disk, title: D, script: link.ps1, expect: [{field: a, op: exists}]}
        """,
    )
    assert "outside the playbook's folder" in str(error_of(path))


def test_unreadable_and_non_mapping_playbooks(tmp_path: Path) -> None:
    assert "cannot read playbook" in str(error_of(tmp_path / "missing.yml"))
    assert "YAML mapping" in str(error_of(write(tmp_path, "- a\n- b\n")))
    (tmp_path / "bin.yml").write_bytes(b"\xff\xfe\x00")
    assert "UTF-8" in str(error_of(tmp_path / "bin.yml"))
