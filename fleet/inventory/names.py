"""Names and addresses: host ranges (`web[01:10]`), group and host name rules, address checks."""

from __future__ import annotations

import ipaddress
import re
import string

from fleet.errors import InputError

#: Upper bound on hosts produced by one range pattern: a typo must not allocate millions.
MAX_RANGE_HOSTS = 100_000

_RANGE = re.compile(r"^(?P<head>[^\[\]]*)\[(?P<body>[^\[\]]*:[^\[\]]*)\](?P<tail>.*)$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_BLANK_OR_COMMA = re.compile(r"[\s,]")


def expand_range(pattern: str, *, path: str, line: int | None) -> list[str]:
    """Expand Ansible host ranges: `web[01:03]` → web01 web02 web03; `[a:c]`; `[1:9:2]`."""
    match = _RANGE.match(pattern) if "[" in pattern else None
    if not match:
        return [pattern]
    parts = match["body"].split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InputError(
            f"bad host range {pattern!r}: expected [START:END] or [START:END:STEP]",
            path=path,
            line=line,
        )
    start, end = parts[0], parts[1]
    step_text = parts[2] if len(parts) == 3 else "1"
    if not step_text.isdigit() or int(step_text) < 1:
        raise InputError(
            f"bad host range {pattern!r}: step must be a positive integer", path=path, line=line
        )
    step = int(step_text)
    if start.isdigit() and end.isdigit():
        lo, hi = int(start), int(end)
        width = len(start) if start.startswith("0") else 0
        items = [str(i).zfill(width) for i in _bounded(lo, hi, step, pattern, path, line)]
    elif (
        len(start) == len(end) == 1
        and start in string.ascii_letters
        and end in string.ascii_letters
    ):
        items = [chr(i) for i in _bounded(ord(start), ord(end), step, pattern, path, line)]
    else:
        raise InputError(
            f"bad host range {pattern!r}: bounds must be two numbers or two single letters",
            path=path,
            line=line,
        )
    tails = expand_range(match["tail"], path=path, line=line)
    if len(items) * len(tails) > MAX_RANGE_HOSTS:
        raise InputError(
            f"host range {pattern!r} expands to more than {MAX_RANGE_HOSTS} hosts",
            path=path,
            line=line,
        )
    return [match["head"] + item + tail for item in items for tail in tails]


def _bounded(lo: int, hi: int, step: int, pattern: str, path: str, line: int | None) -> range:
    if lo > hi:
        raise InputError(f"bad host range {pattern!r}: start is after end", path=path, line=line)
    if (hi - lo) // step + 1 > MAX_RANGE_HOSTS:
        raise InputError(
            f"host range {pattern!r} expands to more than {MAX_RANGE_HOSTS} hosts",
            path=path,
            line=line,
        )
    return range(lo, hi + 1, step)


def check_group_name(name: str, *, path: str, line: int | None) -> str:
    if not _GROUP_NAME.match(name):
        raise InputError(
            f"bad group name {name!r}: use letters, digits, '_', '-' and '.' "
            "(it must not start with '-' or '.')",
            path=path,
            line=line,
        )
    return name


def check_host_name(name: str, *, path: str, line: int | None) -> str:
    """Host names are labels (the address may come from a var), but they must be usable in
    `--limit` patterns and reports: no blanks, commas or pattern operators at the start."""
    if not name or _BLANK_OR_COMMA.search(name) or name[0] in "&!~@":
        raise InputError(
            f"bad host name {name!r}: no blanks or commas, and it must not start with & ! ~ @",
            path=path,
            line=line,
        )
    return name


# What ipaddress.IPv4Address accepts: four decimal octets 0-255, no leading zeros. Tried
# first: ipaddress itself costs ~10 µs, and an inventory of 200 000 hosts asks 400 000 times.
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def is_ip(text: str) -> bool:
    if _IPV4.fullmatch(text):
        return True
    if ":" not in text:  # not IPv6 either: no need to ask ipaddress
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_hostname(text: str) -> bool:
    """RFC 1123 host name (a trailing dot allowed); an all-numeric last label is not a name."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def is_address(text: str) -> bool:
    return is_ip(text) or is_hostname(text)


_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_var_name(name: str, *, path: str, line: int | None) -> str:
    if not _VAR_NAME.match(name):
        raise InputError(
            f"bad variable name {name!r}: use letters, digits and '_', not starting with a digit",
            path=path,
            line=line,
        )
    return name
