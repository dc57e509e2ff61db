"""The quser fallback parser: real-looking outputs and generated rows (hypothesis)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.checks.quser import cell_width, parse_idle, parse_quser, state_name

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


# Recorded outputs (tests/fixtures/facts/quser-*.json): what each must parse to, row by row.
FIXTURES = Path(__file__).parents[1] / "fixtures" / "facts"
D, A = "Disconnected", "Active"
RECORDED: dict[str, list[tuple[int, str, str | None, str, int]]] = {
    "quser-german": [
        (2, "administrator", "rdp-tcp#5", A, 0),
        (3, "m.mueller", None, D, (26 * 60 + 10) * 60),
        (4, "k.schmidt", "rdp-tcp#7", A, (2 * 60 + 15) * 60),
        (5, "j.weber", None, D, 45 * 60),
    ],
    "quser-french": [
        (1, "administrateur", "console", A, 0),
        (3, "m.dupont", None, D, (26 * 60 + 10) * 60),
        (4, "c.martin", "rdp-tcp#7", A, (2 * 60 + 15) * 60),
        (5, "j.bernard", None, D, 45 * 60),
    ],
    "quser-japanese": [
        (1, "administrator", "console", A, 0),
        (3, "tanaka", None, D, (26 * 60 + 10) * 60),
        (4, "suzuki", "rdp-tcp#7", A, (2 * 60 + 15) * 60),
        (5, "田中太郎", None, D, 45 * 60),
    ],
}


def test_every_quser_fixture_has_its_expected_rows() -> None:
    assert {p.stem for p in FIXTURES.glob("quser-*.json")} == set(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_quser_outputs(name: str) -> None:
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    rows = parse_quser(doc["facts"]["sessions"]["quser_text"])
    assert [(r.id, r.user, r.session_name, r.state, r.idle_seconds) for r in rows] == RECORDED[name]
    assert [r.current for r in rows] == [True, False, False, False]


# Japanese: the header is full-width (two display cells a character). A wide user name may be
# padded by display cells or by characters; either way its columns must be found.
JA_HEADER = " ユーザー名            セッション名       ID  状態    アイドル時間 ログオン時刻"


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            " 田中太郎              rdp-tcp#3           3  アクティブ       5  2024/06/01 9:00",
            id="padded-by-cells",
        ),
        pytest.param(
            " 田中太郎                  rdp-tcp#3           3  アクティブ       5  2024/06/01 9:00",
            id="padded-by-characters",
        ),
        pytest.param(
            " 田中 太郎                                   7  切断           12  2024/06/01 9:00",
            id="disconnected-name-with-a-space",
        ),
    ],
)
def test_japanese_rows_with_wide_user_names(row: str) -> None:
    (parsed,) = parse_quser(JA_HEADER + "\r\n" + row)
    assert parsed.user in ("田中太郎", "田中 太郎")
    if parsed.session_name:
        assert (parsed.session_name, parsed.id, parsed.state) == ("rdp-tcp#3", 3, "Active")
    else:
        assert (parsed.id, parsed.state, parsed.idle_seconds) == (7, "Disconnected", 720)


def test_cell_width_counts_full_width_characters_twice() -> None:
    assert cell_width("USERNAME") == 8
    assert cell_width("ユーザー名") == 10
    assert cell_width("ÉTAT") == 4


@pytest.mark.parametrize(
    ("word", "state"),
    [("Actif", A), ("Déco", D), ("アクティブ", A), ("切断", D), ("Getr.", D), ("Disc", D)],
)
def test_localized_state_words(word: str, state: str) -> None:
    assert state_name(word) == state


@pytest.mark.parametrize("word", ["aucun", "なし", "none", "."])
def test_localized_no_idle_words(word: str) -> None:
    assert parse_idle(word) == 0
