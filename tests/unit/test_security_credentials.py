"""Security: password files (0600, symlinks, directories, FIFOs), messages and reprs never
carry the password, and a password typed into a reference var is not echoed back."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from fleet.errors import InputError
from fleet.inventory import load_inventory, target_for
from fleet.secret import Secret

PASSWORD = "Zq7-cred-'\"$(id)`x`;\nnot-a-line"


def inventory(tmp_path: Path, host_vars: str) -> Path:
    body = "\n".join("      " + line for line in host_vars.strip().splitlines())
    path = tmp_path / "inv.yml"
    path.write_text(f"g:\n  hosts:\n    h1:\n      fleet_user: admin\n{body}\n")
    return path


def password_of(tmp_path: Path, host_vars: str) -> Secret | None:
    return target_for(load_inventory(inventory(tmp_path, host_vars)).hosts["h1"]).password


def secret_file(tmp_path: Path, name: str = "pw", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(PASSWORD + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o666, 0o700 | 0o004])
def test_group_or_other_bits_are_refused_naming_the_fix(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, mode=mode)
    with pytest.raises(InputError, match=r"chmod 600") as err:
        password_of(tmp_path, f"fleet_password_file: {path.name}")
    assert f"{mode:04o}" in str(err.value)
    assert PASSWORD not in str(err.value)


def test_0600_and_0400_are_accepted(tmp_path: Path) -> None:
    secret_file(tmp_path, mode=0o400)
    password = password_of(tmp_path, "fleet_password_file: pw")
    assert password is not None and password.reveal() == PASSWORD


def test_symlink_is_judged_by_its_target(tmp_path: Path) -> None:
    """A symlink's own mode is always 0777; what matters is who can read the target."""
    secret_file(tmp_path, "real", mode=0o600)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    password = password_of(tmp_path, "fleet_password_file: link")
    assert password is not None and password.reveal() == PASSWORD

    (tmp_path / "real").chmod(0o644)
    with pytest.raises(InputError, match="mode 0644"):
        password_of(tmp_path, "fleet_password_file: link")


def test_dangling_symlink_and_directory_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(InputError, match="cannot read password file: No such file"):
        password_of(tmp_path, "fleet_password_file: dangling")
    (tmp_path / "adir").mkdir(mode=0o700)
    with pytest.raises(InputError, match="not a regular file"):
        password_of(tmp_path, "fleet_password_file: adir")
    (tmp_path / "dirlink").symlink_to(tmp_path / "adir")
    with pytest.raises(InputError, match="not a regular file"):
        password_of(tmp_path, "fleet_password_file: dirlink")


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """Opening a FIFO with no writer would hang a plain open() forever."""
    os.mkfifo(tmp_path / "fifo", 0o600)
    with pytest.raises(InputError, match="not a regular file"):
        password_of(tmp_path, "fleet_password_file: fifo")


def test_non_utf8_password_file_error_quotes_no_bytes(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"Zq7-\xff\xfe-binary")
    path.chmod(0o600)
    with pytest.raises(InputError, match="not UTF-8 text") as err:
        password_of(tmp_path, "fleet_password_file: pw")
    assert "Zq7" not in str(err.value)


@pytest.mark.parametrize(
    "var", ["fleet_password_env", "fleet_password_keyring", "fleet_password_file"]
)
def test_password_typed_into_a_reference_var_is_not_echoed(tmp_path: Path, var: str) -> None:
    value = json.dumps("Zq7 typed pw!") if var == "fleet_password_env" else "[1, 2]"
    with pytest.raises(InputError) as err:
        load_inventory(inventory(tmp_path, f"{var}: {value}"))
    assert "Zq7" not in str(err.value)
    assert "[1, 2]" not in str(err.value)


def test_inline_password_never_shows_in_reprs_or_messages(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, f"ansible_password: {json.dumps(PASSWORD)}"))
    host = inv.hosts["h1"]
    target = target_for(host)
    assert target.password is not None and target.password.reveal() == PASSWORD
    for shown in (repr(inv), repr(host), repr(target), str(target), f"{target.password}"):
        assert "Zq7" not in shown
    assert "Zq7" not in json.dumps(dict(host.vars), default=str)
    with pytest.raises(TypeError):
        pickle.dumps(target)


def test_env_password_never_shows_in_the_target_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_SEC_TEST_PW", PASSWORD)
    inv = load_inventory(inventory(tmp_path, "fleet_password_env: FLEET_SEC_TEST_PW"))
    target = target_for(inv.hosts["h1"])
    assert target.password is not None and target.password.reveal() == PASSWORD
    assert "Zq7" not in repr(target)


def test_other_secret_looking_vars_are_wrapped_too(tmp_path: Path) -> None:
    """A key passphrase or become password collected as a transport option stays masked."""
    inv = load_inventory(
        inventory(
            tmp_path,
            "ansible_ssh_private_key_passphrase: Zq7-pp\nansible_become_pass: Zq7-become",
        )
    )
    target = target_for(inv.hosts["h1"])
    assert "Zq7" not in repr(target)
    assert "Zq7" not in repr(inv)
