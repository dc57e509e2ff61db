"""Passwords by reference (env, file, keyring), inline with a warning, the prompt as a
fallback — and never a secret in a repr, message or log line."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
import structlog
from keyring.backend import KeyringBackend

from fleet.errors import InputError
from fleet.inventory import Host, load_inventory, password_source, target_for
from fleet.secret import Secret

SECRET = "S3cr3t-do-not-leak"


def inv(tmp_path: Path, host_vars: str, name: str = "inv.yml") -> Path:
    body = "\n".join("      " + line for line in host_vars.strip().splitlines())
    path = tmp_path / name
    path.write_text(f"g:\n  hosts:\n    h1:\n      fleet_user: admin\n{body}\n")
    return path


def host(tmp_path: Path, host_vars: str) -> Host:
    return load_inventory(inv(tmp_path, host_vars)).hosts["h1"]


def test_env_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", SECRET)
    h = host(tmp_path, "fleet_password_env: FLEET_TEST_PW")
    assert password_source(h).describe() == "env:FLEET_TEST_PW"
    assert target_for(h).password == Secret(SECRET)


def test_env_reference_unset_is_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEET_TEST_PW", raising=False)
    with pytest.raises(InputError, match="FLEET_TEST_PW, which is not set"):
        target_for(host(tmp_path, "fleet_password_env: FLEET_TEST_PW"))


def test_file_reference_relative_to_inventory_strips_one_newline(tmp_path: Path) -> None:
    pw = tmp_path / "secrets" / "pw"
    pw.parent.mkdir()
    pw.write_text(SECRET + "\n\n")
    pw.chmod(0o600)
    h = host(tmp_path, "fleet_password_file: secrets/pw")
    assert password_source(h).describe() == f"file:{pw}"
    assert target_for(h).password == Secret(SECRET + "\n")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    pw.chmod(mode)
    with pytest.raises(InputError) as info:
        target_for(host(tmp_path, "fleet_password_file: pw"))
    assert str(pw) in str(info.value) and f"{mode:04o}" in str(info.value)
    assert SECRET not in str(info.value)


def test_file_missing_or_not_regular(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read password file"):
        target_for(host(tmp_path, "fleet_password_file: nope"))
    (tmp_path / "d").mkdir(mode=0o700)
    with pytest.raises(InputError, match="not a regular file"):
        target_for(host(tmp_path, "fleet_password_file: d"))


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


def test_keyring_reference(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        h = host(tmp_path, "fleet_password_keyring: fleet-test")
        with pytest.raises(InputError, match="no password for user 'admin'"):
            target_for(h)
        backend.set_password("fleet-test", "admin", SECRET)
        assert password_source(h).describe() == "keyring:fleet-test"
        assert target_for(h).password == Secret(SECRET)
    finally:
        keyring.set_keyring(previous)


def test_inline_password_is_masked_and_warned_once(tmp_path: Path) -> None:
    path = tmp_path / "i.ini"
    path.write_text(f"[g]\nh1 ansible_password={SECRET}\nh2 ansible_password=123456\n")
    with structlog.testing.capture_logs() as logs:
        inventory = load_inventory(path)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and "plain-text" in warnings[0]["event"]
    assert SECRET not in repr(logs)
    h1, h2 = inventory.hosts["h1"], inventory.hosts["h2"]
    assert SECRET not in repr(h1) and SECRET not in repr(inventory)
    assert password_source(h1).describe() == "inline"
    assert target_for(h1).password == Secret(SECRET)
    assert target_for(h2).password == Secret("123456")
    assert SECRET not in repr(target_for(h1))


def test_prompt_is_the_fallback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = Secret("typed")
    none = host(tmp_path, "x: 1")
    assert target_for(none).password is None
    assert password_source(none).describe() == "none"
    assert password_source(none, ask_pass=True).describe() == "prompt"
    assert target_for(none, ask_pass=asked).password == asked
    monkeypatch.setenv("FLEET_TEST_PW", SECRET)
    env = host(tmp_path, "fleet_password_env: FLEET_TEST_PW")
    assert target_for(env, ask_pass=asked).password == Secret(SECRET)


def test_reference_vars_win_over_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_TEST_PW", "from-env")
    h = host(tmp_path, f"ansible_password: {SECRET}\nfleet_password_env: FLEET_TEST_PW")
    assert target_for(h).password == Secret("from-env")


def test_bad_password_var_type_does_not_quote_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ansible_password must be a string") as info:
        load_inventory(inv(tmp_path, f"ansible_password: [{SECRET}]"))
    assert SECRET not in str(info.value)


def test_yaml_syntax_error_does_not_quote_the_line(tmp_path: Path) -> None:
    path = tmp_path / "i.yml"
    path.write_text(f'g:\n  hosts:\n    h1:\n      ansible_password: "{SECRET}\n')
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert SECRET not in str(info.value) and info.value.path == str(path)


def test_keyring_needs_a_user(tmp_path: Path) -> None:
    path = tmp_path / "i.yml"
    path.write_text("g:\n  hosts:\n    h1:\n      fleet_password_keyring: svc\n")
    with pytest.raises(InputError, match="needs a user name"):
        target_for(load_inventory(path).hosts["h1"])


def test_env_name_must_be_a_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="environment variable name"):
        load_inventory(inv(tmp_path, "fleet_password_env: 'not a name'"))
