"""A parser for `quser` / `query user` text, the fallback when WTS APIs are unavailable.

The traps (docs/domain.md): a disconnected session has no SESSIONNAME, so splitting on blanks
shifts every column; idle time is `.`, `none`, minutes, `H:MM` or `D+HH:MM`; the current
session is marked with `>`; state words, the header and dates are localized (the host's
display language: en-US, de-DE, fr-FR, ja-JP in the fleet). The parser therefore uses the
header's column positions when it can, recognises state and "no idle" words in those
languages, and treats a row whose session name is empty but whose id is numeric as
disconnected whatever its state word says.

Japanese headers are full-width text: a console lays them out in display cells (two per
full-width character), so the header's columns are measured in cells, and a row is cut where
its own cells (or, failing that, characters) reach that column. Dates are kept as printed
(`logon`); fleet never parses them.

Where the words come from: en-US and de-DE as fleet's fixtures; fr-FR from published outputs
("UTILISATEUR SESSION ID ÉTAT TEMPS INACT TEMPS SESSION", "Actif", "aucun", dd/MM/yyyy HH:mm);
ja-JP ("ユーザー名 セッション名 ID 状態 アイドル時間 ログオン時刻", "アクティブ", "切断", "なし",
yyyy/MM/dd H:mm) from Windows' Japanese terminology, not yet checked against a Japanese host.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Localized state words (lower-case, accents kept and also stripped) → WTS state name.
STATE_WORDS: dict[str, str] = {
    # English
    "active": "Active",
    "disc": "Disconnected",
    "disconnected": "Disconnected",
    "conn": "Connected",
    "connected": "Connected",
    "listen": "Listen",
    "idle": "Idle",
    "down": "Down",
    "reset": "Reset",
    "init": "Init",
    "shadow": "Shadow",
    "connquery": "ConnectQuery",
    # German
    "aktiv": "Active",
    "getr.": "Disconnected",
    "getrennt": "Disconnected",
    "verb.": "Connected",
    "verbunden": "Connected",
    "abh.": "Listen",
    "abhören": "Listen",
    "leerl.": "Idle",
    "leerlauf": "Idle",
    # French
    "actif": "Active",
    "déco": "Disconnected",
    "déconnecté": "Disconnected",
    "deconnecte": "Disconnected",
    "conn.": "Connected",
    "connecté": "Connected",
    "écouter": "Listen",
    "inactif": "Idle",
    # Japanese
    "アクティブ": "Active",
    "切断": "Disconnected",
    "接続": "Connected",
}
NO_IDLE_WORDS = {".", "none", "aucun", "aucune", "kein", "keine", "ninguno", "なし"}
_IDLE_DAYS = re.compile(r"^(?P<d>[0-9]+)\+(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})$")
_IDLE_HM = re.compile(r"^(?P<h>[0-9]+):(?P<m>[0-9]{2})$")
_IDLE_M = re.compile(r"^[0-9]+$")
_ID = re.compile(r"^[0-9]+$")  # ASCII only: str.isdigit() accepts "²", which int() rejects


@dataclass(frozen=True)
class QuserRow:
    user: str
    session_name: str | None
    id: int
    state: str  # a WTS state name when recognised, else the word as printed
    state_word: str
    idle_seconds: int | None
    logon: str
    current: bool


def _fold(word: str) -> str:
    lowered = word.lower()
    return "".join(
        c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c)
    )


def state_name(word: str) -> str | None:
    lowered = word.lower()
    return STATE_WORDS.get(lowered) or STATE_WORDS.get(_fold(word))


def parse_idle(text: str) -> int | None:
    """Idle time in seconds; None when the text is not an idle time."""
    text = text.strip()
    if text.lower() in NO_IDLE_WORDS:
        return 0
    if m := _IDLE_DAYS.match(text):
        return ((int(m["d"]) * 24 + int(m["h"])) * 60 + int(m["m"])) * 60
    if m := _IDLE_HM.match(text):
        return (int(m["h"]) * 60 + int(m["m"])) * 60
    if _IDLE_M.match(text):
        return int(text) * 60
    return None


def _is_id(token: str) -> bool:
    return _ID.match(token) is not None


def _is_header(line: str) -> bool:
    # Every session row carries a numeric id; the header (in any language) has none.
    return not any(_is_id(tok) for tok in line.split())


def cell_width(text: str) -> int:
    """Display cells `text` takes in a console: two for East Asian wide/full-width characters."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _char_index(text: str, cells: int) -> int | None:
    """The index of the character that starts at display cell `cells`, or None."""
    width = 0
    for i, c in enumerate(text):
        if width == cells:
            return i
        if width > cells:
            return None
        width += cell_width(c)
    return len(text) if width == cells else None


def _header_session_column(header: str) -> int | None:
    """Where the second column (SESSIONNAME, SITZUNGSNAME, ...) starts, in display cells."""
    m = re.match(r"^\s*\S+\s+", header)
    return cell_width(header[: m.end()]) if m else None


def _split_user(body: str, session_col: int | None) -> tuple[str, str] | None:
    """(user, rest) cut at the header's column when the row fits it, else None. The column is
    tried in the row's display cells, then in characters (a wide user name may be padded by
    either)."""
    if session_col is None:
        return None
    for index in dict.fromkeys((_char_index(body, session_col), session_col)):
        if index is None or index < 2 or len(body) <= index:
            continue
        if body[index - 1] != " ":  # a user name ran into the next column
            continue
        user, rest = body[1:index].strip(), body[index:].split()
        if user and rest and (_is_id(rest[0]) or (len(rest) > 1 and _is_id(rest[1]))):
            return user, body[index:]
    return None


def parse_row(line: str, session_col: int | None = None) -> QuserRow | None:
    """One session row, or None for a line that is not one."""
    if not line.strip():
        return None
    body = line if line[:1] in (" ", ">") else " " + line
    current = body.startswith(">")
    split = _split_user(body, session_col)
    if split is not None:
        user, rest_text = split
        rest = rest_text.split()
    else:
        tokens = body[1:].split()
        if len(tokens) < 3:
            return None
        user, rest = tokens[0], tokens[1:]
    if not rest:
        return None
    if _is_id(rest[0]) and (len(rest) < 2 or not _is_id(rest[1])):
        session_name = None
        sid, after = rest[0], rest[1:]
    elif len(rest) >= 2 and _is_id(rest[1]):
        session_name, sid, after = rest[0], rest[1], rest[2:]
    else:
        return None
    state_word = after[0] if after else ""
    idle = parse_idle(after[1]) if len(after) > 1 else None
    logon = " ".join(after[2:])
    known = state_name(state_word) if state_word else None
    state = "Disconnected" if session_name is None else (known or state_word)
    return QuserRow(
        user=user,
        session_name=session_name,
        id=int(sid),
        state=state,
        state_word=state_word,
        idle_seconds=idle,
        logon=logon,
        current=current,
    )


def parse_quser(text: str) -> list[QuserRow]:
    """All session rows of a `quser` output; messages such as "No User exists" yield []."""
    rows: list[QuserRow] = []
    session_col: int | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if _is_header(line):
            if not rows:  # the last such line before the first row is the header
                session_col = _header_session_column(line if line[:1] == " " else " " + line)
            continue
        row = parse_row(line, session_col)
        if row is not None:
            rows.append(row)
    return rows
