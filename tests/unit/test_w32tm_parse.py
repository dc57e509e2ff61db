"""fleet.checks.w32tm against w32tm output as Windows prints it in en-US, de-DE, fr-FR, ja-JP.

Every text below is a captured output, not an invention (the value each case checks is
in its row):
- EN_DOC: the sample in Microsoft's "Windows Time service tools and settings"
  (MicrosoftDocs/windowsserverdocs WindowsServerDocs/networking/windows-time-service/
  Windows-Time-Service-Tools-and-Settings.md, "Configure a computer clock reset").
- EN_NEVER, DE_VERBOSE, FR_VERBOSE: Checkmk's parser tests (Checkmk/checkmk
  tests/unit/cmk/plugins/windows/agent_based/test_w32time_status.py: NEVER_SYNCED,
  DE_LINE_WRAP, FR_GOOD_SYNC), re-joined into lines; the German umlauts, which that capture
  shows as OEM code page bytes (\\x84, \\x94, \\x81), are written as the characters they are.
- DE_SHORT: a Windows 10 de-DE console capture of `w32tm /query /status` (a GitHub notes
  page, "Windows Timeserver settings ... sorry german settings", 2024-09-20).
- JA_SHORT: a Windows Server 2019 ja-JP capture of `w32tm /query /status` (a GitHub notes
  page "Windows Server 2019 Install", 2022-01-10); its labels match the list in @IT's
  "w32tmコマンドとレジストリによるWindows Timeサービスの制御" (atmarkit.itmedia.co.jp
  /ait/articles/1207/12/news146_2.html).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.checks.w32tm import REFID_LOCL, last_sync, parse_local_datetime, parse_status
from fleet.facts import TimeFacts

EN_DOC = """Leap Indicator: 0(no warning)
Stratum: 1 (primary reference - syncd by radio clock)
Precision: -23 (119.209ns per tick)
Root Delay: 0.0003538s
Root Dispersion: 0.0100002s
ReferenceId: 0x00000000 (unspecified)
Last Successful Sync Time: 5/23/2023 7:51:39 PM
Source: VM IC Time Synchronization Provider
Poll Interval: 6 (64s)

Phase Offset: -0.0000013s
ClockRate: 0.0156250s
State Machine: 2 (Sync)
Time Source Flags: 3 (Authenticated Hardware )
Server Role: 0 (None)
Last Sync Error: 0 (The command completed successfully.)
Time since Last Good Sync Time: 15.7344985s
"""

EN_NEVER = """Leap Indicator: 3(not synchronized)
Stratum: 0 (unspecified)
Precision: -23 (119.209ns per tick)
Root Delay: 0.0000000s
Root Dispersion: 0.0000000s
ReferenceId: 0x00000000 (unspecified)
Last Successful Sync Time: unspecified
Source: Local CMOS Clock
Poll Interval: 6 (64s)
Phase Offset: 0.0000000s
ClockRate: 0.0156250s
State Machine: 0 (Unset)
Time Source Flags: 0 (None)
Server Role: 0 (None)
Last Sync Error: 1 (The computer did not resync because no time data was available.)
Time since Last Good Sync Time: 0.4332958s
"""

DE_VERBOSE = "\n".join(
    [
        "Sprungindikator: 0(keine Warnung)",
        "Stratum: 3 (Sekundärreferenz - synchr. über (S)NTP)",
        "Präzision: -23 (119.209ns pro Tick)",
        "Stammverzögerung: 0.0336332s",
        "Stammabweichung: 0.1054265s",
        "Referenz-ID: 0xAC689AB6 (Quell-IP:  172.104.154.182)",
        "Letzte erfolgr. Synchronisierungszeit: 15.09.2025 13:12:56",
        "Quelle: de.pool.ntp.org",
        "Abrufintervall: 13 (8192s)",
        "Phasendifferenz: -0.0003717s",
        "Taktfrequenz: 0.0156249s",
        "Statuscomputer: 2 (Sync)",
        "Zeitquellenkennzeichen: 0 (Keine)",
        "Serverrolle: 0 (Keine)",
        "Letzter Synchronierungsfehler: 2 (Der Computer wurde nicht synchronisiert, da "
        "nur veraltete Zeitdaten",
        "verfügbar waren.)",
        "Zeit seit der letzten erfolgr. Synchronisierungszeit: 4812.7981071s",
        "",
    ]
)

DE_SHORT = """Sprungindikator: 0(keine Warnung)
Stratum: 4 (Sekundärreferenz - synchr. über (S)NTP)
Präzision: -23 (119.209ns pro Tick)
Stammverzögerung: 0.0168694s
Stammabweichung: 7.7960610s
Referenz-ID: 0x0D5F41FB (Quell-IP:  13.95.65.251)
Letzte erfolgr. Synchronisierungszeit: 20.09.2024 10:43:13
Quelle: time.windows.com,0x9
Abrufintervall: 10 (1024s)
"""

FR_VERBOSE = """Indicateur de dérive : 0(Aucun avertissement)
Couche : 4 (Référence secondaire, synchronisée par (S)NTP)
Précision : -23 (119.209ns par battement)
Délai de racine : 0.1303487s
Dispersion de racine : 0.0100002s
ID de référence : 0x564D5450 (IP de la source :  86.77.84.80)
Heure de la dernière synchronisation réussie : 15/09/2025 01:11:10
Source : VM IC Time Synchronization Provider
Intervalle d’interrogation : 6 (64s)
Décalage de phase : 0.0015321s
Fréquence d’horloge : 0.0156249s
Ordinateur d’état : 1 (Attente)
Indicateur de source de temps : 3 (Authentifié Matériel )
Rôle de serveur : 0 (Aucun)
Erreur lors de la dernière synchronisation : 0 (La commande s’est terminée correctement.)
Durée écoulée depuis l’heure de la dernière synchronisation réussie : 22.0930147s
"""

JA_SHORT = """閏インジケーター: 0 (警告なし)
階層: 3 (二次参照 - (S)NTP で同期)
精度: -23 (ティックごとに 119.209ns)
ルート遅延: 0.0216253s
ルート分散: 7.7938950s
参照 ID: 0x0A000003 (ソース IP:  10.30.0.3)
最終正常同期時刻: 2022/01/10 1:45:54
ソース: 10.30.0.3,8
ポーリング間隔: 10 (1024s)
"""

# (case, text, culture, leap, stratum, refid, source, local sync time, seconds since)
CASES = [
    ("en-US docs", EN_DOC, "en-US", 0, 1, 0, "VM IC Time Synchronization Provider",
     datetime(2023, 5, 23, 19, 51, 39), 15.7344985),
    ("en-US never", EN_NEVER, "en-US", 3, 0, 0, "Local CMOS Clock", None, 0.4332958),
    ("de-DE verbose", DE_VERBOSE, "de-DE", 0, 3, 0xAC689AB6, "de.pool.ntp.org",
     datetime(2025, 9, 15, 13, 12, 56), 4812.7981071),
    ("de-DE short", DE_SHORT, "de-DE", 0, 4, 0x0D5F41FB, "time.windows.com,0x9",
     datetime(2024, 9, 20, 10, 43, 13), None),
    ("fr-FR verbose", FR_VERBOSE, "fr-FR", 0, 4, 0x564D5450,
     "VM IC Time Synchronization Provider", datetime(2025, 9, 15, 1, 11, 10), 22.0930147),
    ("ja-JP short", JA_SHORT, "ja-JP", 0, 3, 0x0A000003, "10.30.0.3,8",
     datetime(2022, 1, 10, 1, 45, 54), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "text", "culture", "leap", "stratum", "refid", "source", "local", "since"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_captured_outputs_read_by_position(
    case: str,
    text: str,
    culture: str,
    leap: int,
    stratum: int,
    refid: int,
    source: str,
    local: datetime | None,
    since: float | None,
) -> None:
    status = parse_status(text.replace("\n", "\r\n"), culture)
    assert status is not None
    assert (status.leap, status.stratum, status.refid, status.source) == (
        leap,
        stratum,
        refid,
        source,
    )
    assert status.last_sync_local == local
    assert status.since_last_good_sync_s == since


def test_verbose_fields_and_the_wrapped_german_error_line() -> None:
    status = parse_status(DE_VERBOSE, "de-DE")
    assert status is not None
    assert (status.state_machine, status.last_sync_error) == (2, 2)
    never = parse_status(EN_NEVER, "en-US")
    assert never is not None and not never.synchronized and never.state_machine == 0


@pytest.mark.parametrize(
    ("text", "culture", "expected"),
    [
        ("9/15/2025 12:01:31 AM", "en-US", datetime(2025, 9, 15, 0, 1, 31)),
        ("12/1/2025 12:30:00 PM", "en-US", datetime(2025, 12, 1, 12, 30)),
        ("01/12/2025 23:00:00", "fr-FR", datetime(2025, 12, 1, 23, 0)),
        ("2025-12-01 07:00:00", "en-US", datetime(2025, 12, 1, 7, 0)),  # user's ISO override
        ("2025/9/14 23:55:21", None, datetime(2025, 9, 14, 23, 55, 21)),  # Checkmk zh-CN
        ("15.09.2025 13:12:56", None, datetime(2025, 9, 15, 13, 12, 56)),  # day > 12 decides
        ("05.09.2025 13:12:56", None, None),  # unknown culture, ambiguous order
        ("unspecified", "en-US", None),
        ("non spécifié", "fr-FR", None),
        ("31/02/2025 10:00:00", "fr-FR", None),
    ],
)
def test_dates_follow_the_culture_not_the_orchestrator(
    text: str, culture: str | None, expected: datetime | None
) -> None:
    assert parse_local_datetime(text, culture) == expected


def test_text_of_another_shape_is_not_guessed() -> None:
    assert (
        parse_status("The following error occurred: The service has not been started.", "en-US")
        is None
    )
    assert parse_status("", "en-US") is None
    assert parse_status(EN_DOC.replace("0x00000000", "zero"), "en-US") is None


NOW = datetime(2025, 9, 15, 12, 0, tzinfo=UTC)


def facts(text: str | None, culture: str = "en-US", offset_min: int | None = 120) -> TimeFacts:
    return TimeFacts(
        utc_now=NOW, source="x", status_text=text, culture=culture, utc_offset_min=offset_min
    )


def test_last_sync_prefers_the_seconds_counter() -> None:
    got = last_sync(facts(DE_VERBOSE, "de-DE"))
    assert got.how == "seconds"
    assert got.value == NOW - timedelta(seconds=4812.7981071)


def test_last_sync_from_the_localized_date_and_the_host_offset() -> None:
    got = last_sync(facts(JA_SHORT, "ja-JP", offset_min=540))
    assert got.how == "date"
    assert got.value == datetime(2022, 1, 9, 16, 45, 54, tzinfo=UTC)
    assert last_sync(facts(JA_SHORT, "ja-JP", offset_min=None)).how == "unreadable"


def test_never_synced_ignores_the_counter_since_the_service_start() -> None:
    got = last_sync(facts(EN_NEVER))
    assert (got.value, got.how) == (None, "never")


def test_old_frames_keep_the_value_their_script_parsed() -> None:
    old = TimeFacts(utc_now=NOW, source="dc01", last_sync=NOW - timedelta(hours=1))
    assert last_sync(old).value == NOW - timedelta(hours=1)
    assert last_sync(old).how == "gathered"


def test_local_cmos_reference_id() -> None:
    # The docs sample with the ReferenceId line of a host on its CMOS clock ("LOCL",
    # 0x4C4F434C: www.check-ntp.net/windows-time-troubleshooting.html, "Decode w32tm").
    text = EN_DOC.replace("0x00000000 (unspecified)", '0x4C4F434C (source name:  "LOCL")')
    status = parse_status(text, "en-US")
    assert status is not None and status.refid == REFID_LOCL and status.local_cmos
