"""Text a host printed, made fit for a one-line error, and advice for what it says.

A host's output reaches errors (a script's first error line, the noise where an answer was
expected, a server's disconnect reason). Raw, it may hold terminal escape codes (PowerShell
7 colours its errors with VT sequences, a profile clears the screen), PowerShell's CLIXML
serialization of its error stream, and shell banners; printed on the admin's terminal, escape
codes would also act on it. So `clean()` keeps printable text only, decodes CLIXML error
strings, and joins lines; `advice()` turns what is recognisable into what to do:

- a PowerShell or cmd.exe startup banner with no answer: the host ran an interactive shell,
  not fleet's command. PowerShell shows its banner only "at startup of interactive
  sessions" (-NoLogo, about_Pwsh:
  https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_pwsh;
  about_PowerShell_exe for 5.1), and sshd runs a client's command through the shell named by
  `HKLM:\\SOFTWARE\\OpenSSH\\DefaultShell`, cmd.exe by default ("OpenSSH Server configuration
  for Windows", https://learn.microsoft.com/windows-server/administration/openssh/openssh-server-configuration);
  what starts an interactive shell instead is the server's own configuration (a ForceCommand,
  a DefaultShell wrapper);
- the shell fleet asked for is not installed ("'pwsh' is not recognized ..."): say which
  inventory setting picks the other one.
"""

from __future__ import annotations

import html
import re

# ECMA-48 control sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and the other
# two-character escapes; then the C0/C1 controls that are left (tab and newline stay).
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clear screen
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window titles, hyperlinks
    r"|\x1b[@-Z\\-_]"  # other escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CLIXML = re.compile(r"#< CLIXML\s*(<Objs\b.*?</Objs>|<Objs\b.*)", re.S)
_CLIXML_ERROR = re.compile(r'<S S="Error">(.*?)</S>', re.S)
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")

# Banners: Windows PowerShell 5.1, PowerShell 7, cmd.exe (the copyright line is localized
# after "Microsoft Corporation"; the first words are not).
_PS_BANNER = re.compile(
    r"^(Windows PowerShell\s*$|Copyright \(C\) Microsoft Corporation\b.*|"
    r"Try the new cross-platform PowerShell\b.*|PowerShell \d+\.\d+\.\d+\S*\s*$|"
    r"A new PowerShell \w+ release is available\b.*|Upgrade to PowerShell\b.*)",
    re.M,
)
_CMD_BANNER = re.compile(
    r"^(Microsoft Windows \[Version [\d.]+\]\s*$|\(c\) (\d{4} )?Microsoft Corporation\b.*)",
    re.M,
)
_PROMPT = re.compile(r"^(PS )?[A-Za-z]:\\[^>\n]*>\s*", re.M)
_NOT_RECOGNIZED = re.compile(
    r"'(?P<a>pwsh|powershell)(?:\.exe)?' is not recognized as an internal or external command"
    r"|The term '(?P<b>pwsh|powershell)(?:\.exe)?' is not recognized"
)

#: What makes a banner mean "not fleet's command", said once for every advice.
_SHELL_ADVICE = (
    "check the host's OpenSSH DefaultShell (HKLM:\\SOFTWARE\\OpenSSH) and any ForceCommand "
    "in its sshd_config: fleet's command must run as sent; a PowerShell forced on the "
    "session needs -NoLogo -NonInteractive -Command -"
)


def decode_clixml(text: str) -> str:
    """PowerShell's CLIXML error stream (`#< CLIXML <Objs>...`) as its error lines; anything
    else in it (progress records) dropped."""

    def errors(match: re.Match[str]) -> str:
        lines = []
        for raw in _CLIXML_ERROR.findall(match.group(1)):
            text = _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), html.unescape(raw))
            lines.append(text)
        return "\n".join(lines)

    return _CLIXML.sub(errors, text)


def strip_controls(text: str) -> str:
    """Escape sequences and control characters out (tab and newline stay)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))


def without_banners(text: str) -> str:
    return _PROMPT.sub("", _CMD_BANNER.sub("", _PS_BANNER.sub("", text)))


def clean_lines(text: str) -> list[str]:
    """The meaningful lines of a host's output: printable, CLIXML decoded, banners and
    prompts left out."""
    plain = without_banners(strip_controls(decode_clixml(text)))
    return [line.strip() for line in plain.splitlines() if line.strip()]


def one_line(text: str) -> str:
    """`text` as one printable line (for an error message)."""
    return " ".join(strip_controls(text).split())


def advice(output: str) -> str | None:
    """What to do about output that holds no answer, when it says something recognisable."""
    text = strip_controls(output)
    missing = _NOT_RECOGNIZED.search(text)
    if missing:
        shell = missing.group("a") or missing.group("b")
        other = "powershell" if shell == "pwsh" else "pwsh"
        return (
            f"{shell} is not installed on the host (or not on its PATH): set fleet_ssh_shell: "
            f"{other} in the inventory, or install it"
        )
    if _PS_BANNER.search(text):
        return (
            "PowerShell printed its startup banner and no answer: it ran as an interactive "
            f"shell instead of fleet's command; {_SHELL_ADVICE}"
        )
    if _CMD_BANNER.search(text):
        return (
            "cmd.exe printed its startup banner and no answer: the host ran an interactive "
            f"cmd.exe instead of fleet's command; {_SHELL_ADVICE}"
        )
    return None
