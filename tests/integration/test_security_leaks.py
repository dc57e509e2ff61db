"""Security: a distinctive password, from every source, never lands in any artifact.

Real labs (SSH and WinRM/NTLM over HTTP) accept a password seeded into their directory; the
real CLI then audits (every report format, the run store), plans, applies (the journal) and
lists the inventory at `--log-level debug` with `--log-file`. Every byte written — stdout,
stderr, log file, reports, plan, the SQLite files — is searched for the password, pieces of it
and the Basic-auth encoding of it.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from keyring.backend import KeyringBackend

from tests.integration.conftest import FLEET, Lab, fleet, start_lab, stop_lab

# Quotes, $(...), backticks, ';' and non-ASCII: also a splicing probe on the way to the host.
PASSWORD = "Zq7Leak-'\"$(whoami)`id`;é-Marker9"
PIECES = (PASSWORD, "Zq7Leak", "Marker9", base64.b64encode(PASSWORD.encode()).decode())
LAB_FAULTS = {"ssh": "auth_fail:1,nla_off:1,garbage:1", "winrm": "auth_fail:1,nla_off:1"}


def start_seeded_lab(root: Path, transport: str) -> Lab:
    lab_dir = root / "lab"
    lab_dir.mkdir(parents=True)
    secret = lab_dir / "lab-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o600)
    lab = start_lab(
        root, "--hosts", "4", "--transport", transport, "--faults", LAB_FAULTS[transport]
    )
    assert secret.read_text(encoding="utf-8").strip() == PASSWORD  # the lab kept ours
    return lab


@pytest.fixture(scope="module", params=["ssh", "winrm"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = start_seeded_lab(tmp_path_factory.mktemp(f"sec-{request.param}"), request.param)
    yield lab
    stop_lab(lab)


def variant(lab: Lab, name: str, **set_vars: object) -> Path:
    """The lab's inventory with the password source replaced (written beside it)."""
    doc = yaml.safe_load(lab.inventory.read_text(encoding="utf-8"))
    doc["all"]["vars"].pop("fleet_password_file")
    doc["all"]["vars"].update(set_vars)
    path = lab.dir / f"inventory-{name}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def assert_no_password(where: Path, *texts: str) -> None:
    """Nothing under `where` (every file, as bytes) nor any of `texts` holds a piece of it."""
    blobs = {f"text{i}": t.encode() for i, t in enumerate(texts)}
    for path in sorted(where.rglob("*")):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    assert len(blobs) > len(texts), "no artifact was written"
    for name, data in blobs.items():
        for piece in PIECES:
            for encoding in ("utf-8", "utf-16-le"):
                assert piece.encode(encoding) not in data, f"{piece!r} found in {name}"


def audit_everything(inventory: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    proc: subprocess.CompletedProcess[str] = fleet(
        "audit", "-i", str(inventory), "-v", "--format", "json", "-o", str(out / "audit.json"),
        "--report", f"junit:{out / 'audit.xml'}", "--report", f"prom:{out / 'audit.prom'}",
        "--report", f"html:{out / 'audit.html'}", "--db", str(out / "runs.db"),
        "--log-level", "debug", "--log-file", str(out / "fleet.log"), "--timeout", "15",
        *extra,
    )  # fmt: skip
    return proc


def assert_audited_with_password(proc: subprocess.CompletedProcess[str], out: Path) -> None:
    """The password was really used: healthy hosts are ok, the auth_fail host is refused."""
    assert proc.returncode == 3, proc.stderr
    statuses = {h["status"] for h in json.loads((out / "audit.json").read_text())["hosts"]}
    assert "ok" in statuses and "auth_failed" in statuses, statuses


def test_file_source_audit_plan_apply_journal(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "out"
    texts: list[str] = []
    proc = audit_everything(lab.inventory, out)
    assert_audited_with_password(proc, out)
    texts += [proc.stdout, proc.stderr]
    common = ["--log-level", "debug", "--timeout", "15"]
    plan = fleet(
        "plan", "-i", str(lab.inventory), "-o", str(out / "plan.json"), "--format", "json",
        "--log-file", str(out / "plan.log"), *common,
    )  # fmt: skip
    assert (out / "plan.json").is_file(), plan.stderr
    applied = fleet(
        "apply", str(out / "plan.json"), "-i", str(lab.inventory), "-y", "--format", "json",
        "--allow-disruptive",  # the NLA fix goes live with a TermService restart
        "--db", str(out / "journal.db"), "--log-file", str(out / "apply.log"), *common,
    )  # fmt: skip
    assert '"applied"' in applied.stdout, applied.stdout + applied.stderr
    journal = fleet("journal", "--db", str(out / "journal.db"), "--format", "json")
    history = fleet("history", "--db", str(out / "runs.db"))
    texts += [plan.stdout, plan.stderr, applied.stdout, applied.stderr]
    texts += [journal.stdout, journal.stderr, history.stdout, history.stderr]
    assert_no_password(out, *texts)


def test_env_source(lab: Lab, tmp_path: Path) -> None:
    inventory = variant(lab, "env", fleet_password_env="FLEET_SECREV_PW")
    out = tmp_path / "out"
    proc = audit_everything(inventory, out)
    assert proc.returncode == 2 and "FLEET_SECREV_PW, which is not set" in proc.stderr
    proc = fleet(*audit_everything_args(inventory, out), env={"FLEET_SECREV_PW": PASSWORD})
    assert_audited_with_password(proc, out)
    assert_no_password(out, proc.stdout, proc.stderr)


def audit_everything_args(inventory: Path, out: Path) -> list[str]:
    return [
        "audit", "-i", str(inventory), "--format", "json", "-o", str(out / "audit.json"),
        "--report", f"html:{out / 'audit.html'}", "--db", str(out / "runs.db"),
        "--log-level", "debug", "--log-file", str(out / "fleet.log"), "--timeout", "15",
    ]  # fmt: skip


def test_inline_source_and_inventory_list(lab: Lab, tmp_path: Path) -> None:
    inventory = variant(lab, "inline", ansible_password=PASSWORD)
    out = tmp_path / "out"
    proc = audit_everything(inventory, out)
    assert_audited_with_password(proc, out)
    assert "plain-text passwords" in (out / "fleet.log").read_text()  # warned about
    listed = fleet("inventory", "list", "-i", str(inventory), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {h["password"] for h in json.loads(listed.stdout)["hosts"]} == {"inline"}
    table = fleet("inventory", "list", "-i", str(inventory))
    graph = fleet("inventory", "graph", "-i", str(inventory))
    texts = [proc.stdout, proc.stderr, listed.stdout, listed.stderr, table.stdout, graph.stdout]
    assert_no_password(out, *texts)


class EnvKeyring(KeyringBackend):
    """A keyring for the child `fleet` process (PYTHON_KEYRING_BACKEND names this class):
    its one password comes from the environment, as a desktop keyring would hand it over."""

    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        if service == "fleet-secrev" and username == os.environ.get("FLEET_SECREV_USER"):
            return os.environ.get("FLEET_SECREV_KEYRING_PW")
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NotImplementedError

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError


def test_keyring_source(lab: Lab, tmp_path: Path) -> None:
    inventory = variant(lab, "keyring", fleet_password_keyring="fleet-secrev")
    user = yaml.safe_load(lab.inventory.read_text())["all"]["vars"]["ansible_user"]
    root = Path(__file__).resolve().parents[2]
    env = {
        "PYTHON_KEYRING_BACKEND": f"{__name__}.EnvKeyring",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "FLEET_SECREV_USER": user,
        "FLEET_SECREV_KEYRING_PW": PASSWORD,
    }
    out = tmp_path / "out"
    out.mkdir()
    proc = fleet(*audit_everything_args(inventory, out), env=env)
    assert_audited_with_password(proc, out)
    assert_no_password(out, proc.stdout, proc.stderr)


def test_ask_pass_prompt(lab: Lab, tmp_path: Path) -> None:
    """--ask-pass reads the password from a terminal; no artifact or output holds it."""
    inventory = variant(lab, "prompt")
    out = tmp_path / "out"
    out.mkdir()
    master, slave = pty.openpty()
    try:
        # A new session has no controlling terminal, so getpass reads the pty on stdin.
        proc = subprocess.Popen(
            [*FLEET, *audit_everything_args(inventory, out), "--ask-pass"],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env=dict(os.environ),
        )  # fmt: skip
        _wait_for_echo_off(slave, proc)  # getpass flushes input typed before its prompt
        os.write(master, (PASSWORD + "\n").encode())
        stdout, stderr = proc.communicate(timeout=120)
        echoed = _drain(master)
    finally:
        os.close(slave)
        os.close(master)
    assert_audited_with_password(subprocess.CompletedProcess([], proc.returncode, "", stderr), out)
    assert_no_password(out, stdout, stderr)
    assert PASSWORD not in echoed  # typed with echo off, never printed back


def _wait_for_echo_off(tty: int, proc: subprocess.Popen[str]) -> None:
    while termios.tcgetattr(tty)[3] & termios.ECHO:
        assert proc.poll() is None, "fleet ended before prompting"
        time.sleep(0.05)


def _drain(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks).decode("utf-8", "replace")
