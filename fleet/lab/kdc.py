"""The lab's Kerberos realm: Debian's MIT KDC (`krb5kdc`) on loopback, made afresh per start.

    kdc = LabKdc.start(lab_dir, address="127.20.0.1", admin="labadmin", password=...,
                       hosts=["rds-a-001", ...])
    ... kdc.keytab("rds-a-001") ... kdc.config ...
    kdc.stop()

Everything lives in DIR/kerberos/: `krb5.conf` (for clients: fleet, pypsrp, ansible, kinit;
the inventory names it as `fleet_kerberos_config`), `kdc.conf`, the principal database and
its stash, one keytab per WinRM host, `kdc.log`. Nothing outside the lab folder is read or
written: the KDC gets its configuration through `KRB5_CONFIG` / `KRB5_KDC_PROFILE` in its
own environment, and clients find it through the lab's krb5.conf, never DNS or /etc/hosts.

Principals are those of a Windows domain: the lab admin (`labadmin@FLEET.LAB`, the lab
password, pre-authentication required as Active Directory requires it) and, per host, the
service principals a domain-joined computer answers to: `host/<fqdn>` (every computer
account has it; pypsrp's default), `HTTP/<fqdn>` (Windows' own WinRM client; Active
Directory maps it onto HOST) and `WSMAN/<fqdn>` (registered for WinRM; Ansible's psrp
plugin and fleet ask for it).

`clock_offset_s` runs the KDC on a shifted clock (libfaketime, Debian's `faketime`): the
realm's time then differs from the machine's, which is what an admin whose clock is off
against the domain meets.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet.errors import InputError
from fleet.secret import Secret

REALM = "FLEET.LAB"
DOMAIN = "fleet.lab"
KDC_DIR = "kerberos"
CONFIG = f"{KDC_DIR}/krb5.conf"  # relative to the lab directory, as in the inventory
SERVICES = ("host", "HTTP", "WSMAN")
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local")
PACKAGES = "krb5-kdc krb5-admin-server"
FAKETIME_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"
START_TIMEOUT_S = 10.0
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def fqdn(name: str) -> str:
    """A lab host's DNS name in the realm's domain (what its SPNs are registered under)."""
    return f"{name.lower()}.{DOMAIN}"


def find_tool(name: str) -> str | None:
    """`name` on PATH, or in the sbin folders a non-root PATH on Debian leaves out."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which(name, path=path)


def faketime_library() -> str | None:
    found = sorted(glob.glob(FAKETIME_GLOB))
    return found[0] if found else None


def missing(clock_offset_s: int = 0) -> str | None:
    """What must be installed for a Kerberos lab, as advice; None when all is there."""
    tools = [t for t in TOOLS if find_tool(t) is None]
    if tools:
        return (
            f"a Kerberos lab needs MIT Kerberos' KDC ({', '.join(tools)} not found): "
            f"apt-get install {PACKAGES}"
        )
    if clock_offset_s and faketime_library() is None:
        return "--kdc-clock-offset runs the KDC under libfaketime: apt-get install faketime"
    from fleet.transports.kerberos import available

    if not available():
        return (
            "a Kerberos lab's hosts accept Kerberos through python-gssapi: "
            "pip install 'fleet[kerberos]' (apt-get install libkrb5-dev first)"
        )
    return None


def require(clock_offset_s: int = 0) -> None:
    problem = missing(clock_offset_s)
    if problem is not None:
        raise InputError(problem)


def _free_port(address: str) -> int:
    """A port free on `address` for both TCP and UDP (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise InputError(f"no free port for the lab KDC on {address}")


def _kdc_conf(folder: Path, address: str, port: int) -> str:
    return f"""[kdcdefaults]
 kdc_listen = {address}:{port}
 kdc_tcp_listen = {address}:{port}

[realms]
 {REALM} = {{
  database_name = {folder}/principal
  key_stash_file = {folder}/stash
  acl_file = {folder}/kadm5.acl
  max_life = 10h 0m 0s
  max_renewable_life = 1d 0h 0m 0s
  default_principal_flags = +preauth
 }}

[logging]
 kdc = FILE:{folder}/kdc.log
 admin_server = FILE:{folder}/kdc.log
 default = FILE:{folder}/kdc.log
"""


def _krb5_conf(address: str, port: int) -> str:
    """The clients' view: this realm's KDC on loopback, names taken as given (no DNS)."""
    return f"""# Written by `fleet lab up`: the lab's realm. Use it with KRB5_CONFIG=<this file>
# (fleet reads it from the inventory's fleet_kerberos_config).
[libdefaults]
 default_realm = {REALM}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1

[realms]
 {REALM} = {{
  kdc = {address}:{port}
 }}

[domain_realm]
 .{DOMAIN} = {REALM}
 {DOMAIN} = {REALM}
"""


def _run(argv: list[str], env: dict[str, str], stdin: str, what: str) -> str:
    try:
        proc = subprocess.run(
            argv, input=stdin, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"lab KDC: {what} failed: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"lab KDC: {what} failed (exit {proc.returncode}): {last[0]}")
    return proc.stdout + proc.stderr


class _EarlyExit(InputError):
    """krb5kdc ended during start-up (most often: its port was taken meanwhile)."""


@dataclass
class LabKdc:
    folder: Path
    address: str
    port: int
    process: subprocess.Popen[bytes] | None

    @property
    def config(self) -> Path:
        return self.folder / "krb5.conf"

    def keytab(self, host: str) -> Path:
        return self.folder / "keytabs" / f"{host}.keytab"

    @classmethod
    def start(
        cls,
        lab_dir: Path,
        *,
        address: str,
        admin: str,
        password: Secret,
        hosts: Sequence[str],
        clock_offset_s: int = 0,
    ) -> LabKdc:
        """Create the realm (database, principals, keytabs) and start the KDC; blocking."""
        require(clock_offset_s)
        folder = lab_dir / KDC_DIR
        stop_leftover(lab_dir)
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "keytabs").mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)
        port = _free_port(address)
        (folder / "kdc.conf").write_text(_kdc_conf(folder, address, port))
        (folder / "krb5.conf").write_text(_krb5_conf(address, port))
        (folder / "kadm5.acl").write_text("")
        env = {
            **os.environ,
            "KRB5_CONFIG": str(folder / "krb5.conf"),
            "KRB5_KDC_PROFILE": str(folder / "kdc.conf"),
        }
        master = secrets.token_urlsafe(24)
        kdb5_util, kadmin = find_tool("kdb5_util"), find_tool("kadmin.local")
        assert kdb5_util is not None and kadmin is not None  # require() checked
        _run([kdb5_util, "create", "-s", "-r", REALM], env, f"{master}\n{master}\n", "kdb5_util")
        _run([kadmin, "-r", REALM], env, _principals(folder, admin, password, hosts), "kadmin")
        absent = [h for h in hosts if not (folder / "keytabs" / f"{h}.keytab").is_file()]
        if absent:
            raise InputError(f"lab KDC: no keytab was written for {absent[0]}")
        for attempt in range(3):  # the free port may be taken between the probe and the bind
            kdc = cls(folder, address, port, None)
            try:
                kdc.process = kdc._spawn(env, clock_offset_s)
                return kdc
            except _EarlyExit:
                if attempt == 2:
                    raise
            port = _free_port(address)
            (folder / "kdc.conf").write_text(_kdc_conf(folder, address, port))
            (folder / "krb5.conf").write_text(_krb5_conf(address, port))
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn(self, env: dict[str, str], clock_offset_s: int) -> subprocess.Popen[bytes]:
        krb5kdc = find_tool("krb5kdc")
        assert krb5kdc is not None
        if clock_offset_s:
            # libfaketime straight in the KDC's environment (the `faketime` wrapper would
            # stay in between as a parent that a stop could miss).
            preload = faketime_library() or ""
            env = {**env, "LD_PRELOAD": preload, "FAKETIME": f"{clock_offset_s:+d}"}
        with open(self.folder / "krb5kdc.out", "ab") as out:
            proc = subprocess.Popen(
                [krb5kdc, "-n", "-r", REALM],  # -n: no fork, so this is the KDC's own pid
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        (self.folder / "kdc.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise _EarlyExit(f"lab KDC exited at start (exit {proc.returncode}); {self._log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.address, self.port), timeout=0.5),
            ):
                return proc
            time.sleep(0.05)
        proc.kill()
        raise InputError(f"lab KDC did not listen within {START_TIMEOUT_S:g}s; {self._log()}")

    def _log(self) -> str:
        try:
            lines = (self.folder / "kdc.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no kdc.log"
        return f"kdc.log: {lines[-1]}" if lines else "kdc.log is empty"

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        (self.folder / "kdc.pid").unlink(missing_ok=True)


def _quoted(text: str, what: str) -> str:
    if any(c in text for c in '"\\\n\r'):
        raise InputError(f"lab KDC: the {what} cannot contain quotes, backslashes or newlines")
    return f'"{text}"'


def _principals(folder: Path, admin: str, password: Secret, hosts: Sequence[str]) -> str:
    """kadmin.local commands, read from its stdin (the password never shows in `ps`)."""
    lines = [f"addprinc -pw {_quoted(password.reveal(), 'lab password')} {admin}"]
    for host in hosts:
        names = [f"{service}/{fqdn(host)}" for service in SERVICES]
        lines += [f"addprinc -randkey {name}" for name in names]
        lines.append(f"ktadd -norandkey -k {folder}/keytabs/{host}.keytab {' '.join(names)}")
    return "\n".join(lines) + "\n"


def stop_leftover(lab_dir: Path) -> None:
    """Stop a KDC a lab left running (a lab killed with SIGKILL cannot stop its own)."""
    pid_file = lab_dir / KDC_DIR / "kdc.pid"
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if b"krb5kdc" in cmdline and str(lab_dir / KDC_DIR).encode() in _environ(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""
