"""The quser fallback parser: real-looking outputs and generated rows (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.checks.quser import parse_idle, parse_quser

HEADER = " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME"

ENGLISH = "\n".join(
    [
        HEADER,
        ">administrator         console             1  Active      none   6/1/2024 9:00 AM",
        " bob                                       2  Disc        1+02:03  5/31/2024 8:00 AM",
        " alice                 rdp-tcp#3           3  Active          5  6/1/2024 10:00 AM",
        " carol                                     4  Disc           .  6/1/2024 11:00 AM",
    ]
)


def test_english_output() -> None:
    rows = parse_quser(ENGLISH)
    assert [(r.user, r.session_name, r.id, r.state) for r in rows] == [
        ("administrator", "console", 1, "Active"),
        ("bob", None, 2, "Disconnected"),
        ("alice", "rdp-tcp#3", 3, "Active"),
        ("carol", None, 4, "Disconnected"),
    ]
    assert [r.idle_seconds for r in rows] == [0, (26 * 60 + 3) * 60, 300, 0]
    assert [r.current for r in rows] == [True, False, False, False]
    assert rows[1].logon == "5/31/2024 8:00 AM"


def test_french_output_with_accented_state() -> None:
    text = "\n".join(
        [
            " UTILISATEUR           SESSION            ID  ÉTAT    TEMPS INACT TEMPS SESSION",
            " dupont                rdp-tcp#2           2  Actif         12  01/06/2024 09:00",
            " martin                rdp-tcp#4           5  Déco        3:04  31/05/2024 18:00",
        ]
    )
    rows = parse_quser(text)
    assert [(r.user, r.id, r.state, r.idle_seconds) for r in rows] == [
        ("dupont", 2, "Active", 720),
        ("martin", 5, "Disconnected", (3 * 60 + 4) * 60),
    ]


def test_no_user_and_noise() -> None:
    assert parse_quser("No User exists for *\r\n") == []
    assert parse_quser("") == []


def test_without_header_falls_back_to_tokens() -> None:
    rows = parse_quser(" bob  2  Disc  1:00  6/1/2024 9:00 AM\r\n>ann console 1 Active none x")
    assert [(r.user, r.session_name, r.id, r.state) for r in rows] == [
        ("bob", None, 2, "Disconnected"),
        ("ann", "console", 1, "Active"),
    ]


def test_user_name_with_a_space_uses_header_columns() -> None:
    text = HEADER + "\n" + " John Smith                                7  Disc         10  6/1/2024"
    (row,) = parse_quser(text)
    assert (row.user, row.session_name, row.id, row.state) == (
        "John Smith",
        None,
        7,
        "Disconnected",
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (".", 0),
        ("none", 0),
        ("Aucun", 0),
        ("0", 0),
        ("59", 59 * 60),
        ("1:00", 3600),
        ("12:34", (12 * 60 + 34) * 60),
        ("2+00:01", (48 * 60 + 1) * 60),
        ("1+2:03", (26 * 60 + 3) * 60),
        ("6/1/2024", None),
        ("", None),
    ],
)
def test_parse_idle(text: str, seconds: int | None) -> None:
    assert parse_idle(text) == seconds


# Generated rows, laid out the way quser prints them.
users = st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,8}( [A-Za-z][A-Za-z0-9]{0,8})?", fullmatch=True)
idles = st.one_of(
    st.sampled_from([(".", 0), ("none", 0)]),
    st.integers(0, 59).map(lambda m: (str(m), m * 60)),
    st.tuples(st.integers(1, 23), st.integers(0, 59)).map(
        lambda t: (f"{t[0]}:{t[1]:02d}", (t[0] * 60 + t[1]) * 60)
    ),
    st.tuples(st.integers(1, 99), st.integers(0, 23), st.integers(0, 59)).map(
        lambda t: (f"{t[0]}+{t[1]:02d}:{t[2]:02d}", ((t[0] * 24 + t[1]) * 60 + t[2]) * 60)
    ),
)
states = st.sampled_from(
    [
        ("Active", "Active"),
        ("Aktiv", "Active"),
        ("Actif", "Active"),
        ("Disc", "Disconnected"),
        ("Getr.", "Disconnected"),
        ("Déco", "Disconnected"),
        ("Conn", "Connected"),
    ]
)
logons = st.sampled_from(["6/1/2024 9:00 AM", "01.06.2024 09:00", "01/06/2024 09:00", ""])


@dataclass(frozen=True)
class RowSpec:
    user: str
    session: str
    id: int
    state: tuple[str, str]  # (word printed, WTS state expected)
    idle: tuple[str, int]  # (text printed, seconds expected)
    logon: str
    current: bool


row_specs = st.builds(
    RowSpec,
    user=users,
    session=st.one_of(st.just(""), st.sampled_from(["console", "rdp-tcp#12", "31c5"])),
    id=st.integers(0, 65536),
    state=states,
    idle=idles,
    logon=logons,
    current=st.booleans(),
)


def render(spec: RowSpec) -> str:
    """A row the way quser lays it out (fixed columns, id right-aligned)."""
    marker = ">" if spec.current else " "
    return (
        f"{marker}{spec.user:<21} {spec.session:<18}{spec.id:>4}  "
        f"{spec.state[0]:<6}{spec.idle[0]:>10}  {spec.logon}"
    ).rstrip()


@given(st.lists(row_specs, min_size=1, max_size=6))
def test_generated_rows(specs: list[RowSpec]) -> None:
    text = "\r\n".join([HEADER, *(render(s) for s in specs)]) + "\r\n"
    rows = parse_quser(text)
    assert len(rows) == len(specs)
    for row, spec in zip(rows, specs, strict=True):
        assert row.user == spec.user
        assert row.session_name == (spec.session or None)
        assert row.id == spec.id
        assert row.idle_seconds == spec.idle[1]
        assert row.current == spec.current
        assert row.logon == " ".join(spec.logon.split())
        # A row without a session name is disconnected, whatever the state word says.
        assert row.state == ("Disconnected" if not spec.session else spec.state[1])


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    for row in parse_quser(text):
        assert row.id >= 0
