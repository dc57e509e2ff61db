"""The lab's Windows Time service: its registry values, what gather.ps1 reads of it, and what
fix-w32time.ps1 does to it, as Windows would (not as fleet's checks think it should).

- `w32tm /query /status /verbose` is rendered in the host's culture (`HostState.locale`):
  labels, words in parentheses and the date as real Windows prints them; numbers are not
  localized. Captured wordings (see tests/unit/test_w32tm_parse.py for the sources): en-US
  all, de-DE and fr-FR the synchronized lines, ja-JP the first nine. The rest (ja-JP lines
  10-16, the never-synchronized words outside en-US, the localized CMOS clock names) are the
  lab's renderings: fleet reads none of them, it reads by position and by number.
- W32Time does not answer `w32tm /query` while stopped; on workgroup hosts it is
  trigger-started and stops itself, started weekly by the Time Synchronization task
  (KB2385818).
- A resync needs a source: the domain hierarchy only on domain members (not the forest-root
  PDC emulator, which has no upstream), NTP peers that answer (`.invalid` names never do,
  RFC 2606), and an offset within MaxPos/MaxNegPhaseCorrection (defaults: domain members
  0xFFFFFFFF, domain controllers 48 h, stand-alone 15 h; "Windows Time service tools and
  settings"). Group Policy values win over the local ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleet.facts import W32TimeConfig

if TYPE_CHECKING:
    from fleet.lab.state import HostState

NO_LIMIT = 0xFFFFFFFF
CMOS = "Local CMOS Clock"
LOCALES = ("en-US", "de-DE", "fr-FR", "ja-JP")
# The lab's time zone per culture (fixed offsets: the lab has no daylight saving time).
UTC_OFFSET_MIN = {"en-US": 0, "de-DE": 60, "fr-FR": 60, "ja-JP": 540}
# What fix-w32time.ps1 accepts as its peer list (it travels as one native argument).
_PEERS = re.compile(r"[A-Za-z0-9.:,_ \[\]-]*")


class FixError(Exception):
    """The fix script's terminating error (the handler turns it into a PowerShell error)."""


@dataclass
class W32TimeSim:
    """W32Time beyond the clock itself (HostState.clock_offset_s, time_source, sync_*)."""

    config: W32TimeConfig = field(
        default_factory=lambda: W32TimeConfig(
            type="NT5DS", max_pos_phase_correction=NO_LIMIT, max_neg_phase_correction=NO_LIMIT
        )
    )
    policy: W32TimeConfig = field(default_factory=W32TimeConfig)
    part_of_domain: bool = True
    domain_role: int = 3  # member server
    forest_root: bool | None = None  # asked on domain controllers only
    trigger_start: bool = True
    sync_task_last_run: datetime | None = None
    sync_task_result: int | None = None

    def effective(self) -> W32TimeConfig:
        def pick(name: str) -> Any:
            value = getattr(self.policy, name)
            return getattr(self.config, name) if value is None else value

        return W32TimeConfig(**{name: pick(name) for name in W32TimeConfig.model_fields})

    def limit_s(self, ahead: bool) -> int:
        name = "max_neg_phase_correction" if ahead else "max_pos_phase_correction"
        value = getattr(self.effective(), name)
        if value is not None:
            return int(value)
        if self.domain_role in (4, 5):
            return 172_800
        return NO_LIMIT if self.part_of_domain else 54_000


def last_weekly_run(now: datetime, offset_min: int) -> datetime:
    """The latest Sunday 01:00 host local time before `now` (KB2385818's schedule), in UTC."""
    local = now + timedelta(minutes=offset_min)
    sunday = local - timedelta(days=(local.weekday() + 1) % 7)
    run = sunday.replace(hour=1, minute=0, second=0, microsecond=0)
    if run > local:
        run -= timedelta(days=7)
    return (run - timedelta(minutes=offset_min)).astimezone(UTC)


# --- rendering ----------------------------------------------------------------------------

_LABELS = {
    "en-US": (
        "Leap Indicator", "Stratum", "Precision", "Root Delay", "Root Dispersion",
        "ReferenceId", "Last Successful Sync Time", "Source", "Poll Interval", "Phase Offset",
        "ClockRate", "State Machine", "Time Source Flags", "Server Role", "Last Sync Error",
        "Time since Last Good Sync Time",
    ),
    "de-DE": (
        "Sprungindikator", "Stratum", "Präzision", "Stammverzögerung", "Stammabweichung",
        "Referenz-ID", "Letzte erfolgr. Synchronisierungszeit", "Quelle", "Abrufintervall",
        "Phasendifferenz", "Taktfrequenz", "Statuscomputer", "Zeitquellenkennzeichen",
        "Serverrolle", "Letzter Synchronierungsfehler",
        "Zeit seit der letzten erfolgr. Synchronisierungszeit",
    ),
    "fr-FR": (
        "Indicateur de dérive ", "Couche ", "Précision ", "Délai de racine ",
        "Dispersion de racine ", "ID de référence ",
        "Heure de la dernière synchronisation réussie ", "Source ",
        "Intervalle d’interrogation ", "Décalage de phase ", "Fréquence d’horloge ",
        "Ordinateur d’état ", "Indicateur de source de temps ", "Rôle de serveur ",
        "Erreur lors de la dernière synchronisation ",
        "Durée écoulée depuis l’heure de la dernière synchronisation réussie ",
    ),
    "ja-JP": (
        "閏インジケーター", "階層", "精度", "ルート遅延", "ルート分散", "参照 ID",
        "最終正常同期時刻", "ソース", "ポーリング間隔", "フェーズ オフセット", "クロック レート",
        "ステート マシン", "タイム ソース フラグ", "サーバーの役割", "最終同期エラー",
        "最終正常同期時刻からの時間",
    ),
}  # fmt: skip

# Words by culture: synchronized / never synchronized values, "source IP", the CMOS clock.
_WORDS: dict[str, dict[str, str]] = {
    "en-US": {
        "leap0": "0(no warning)", "leap3": "3(not synchronized)",
        "stratum": "(secondary reference - syncd by (S)NTP)", "unspecified": "unspecified",
        "tick": "per tick", "ip": "source IP", "sync": "2 (Sync)", "unset": "0 (Unset)",
        "none": "None", "ok": "0 (The command completed successfully.)",
        "nodata": "1 (The computer did not resync because no time data was available.)",
        "cmos": CMOS,
    },
    "de-DE": {
        "leap0": "0(keine Warnung)", "leap3": "3(nicht synchronisiert)",
        "stratum": "(Sekundärreferenz - synchr. über (S)NTP)", "unspecified": "nicht angegeben",
        "tick": "pro Tick", "ip": "Quell-IP", "sync": "2 (Sync)", "unset": "0 (Nicht festgelegt)",
        "none": "Keine", "ok": "0 (Der Befehl wurde erfolgreich ausgeführt.)",
        "nodata": "1 (Der Computer wurde nicht synchronisiert, da keine Zeitdaten verfügbar "
        "waren.)",
        "cmos": "Lokale CMOS-Uhr",
    },
    "fr-FR": {
        "leap0": "0(Aucun avertissement)", "leap3": "3(non synchronisé)",
        "stratum": "(Référence secondaire, synchronisée par (S)NTP)",
        "unspecified": "non spécifié", "tick": "par battement", "ip": "IP de la source ",
        "sync": "2 (Synchronisation)", "unset": "0 (Non défini)", "none": "Aucun",
        "ok": "0 (La commande s’est terminée correctement.)",
        "nodata": "1 (L’ordinateur ne s’est pas resynchronisé car aucune donnée de temps "
        "n’était disponible.)",
        "cmos": "Horloge CMOS locale",
    },
    "ja-JP": {
        "leap0": "0 (警告なし)", "leap3": "3 (同期されていません)",
        "stratum": "(二次参照 - (S)NTP で同期)", "unspecified": "未指定", "tick": "ティックごとに",
        "ip": "ソース IP", "sync": "2 (同期)", "unset": "0 (未設定)", "none": "なし",
        "ok": "0 (コマンドは正しく完了しました。)",
        "nodata": "1 (タイム データが利用できなかったため、コンピューターは再同期しませんでした。)",
        "cmos": "ローカル CMOS クロック",
    },
}  # fmt: skip


def _date(value: datetime, locale: str) -> str:
    """The user's short date and long time, as w32tm prints them (captures in the tests)."""
    if locale == "de-DE":
        return value.strftime("%d.%m.%Y %H:%M:%S")
    if locale == "fr-FR":
        return value.strftime("%d/%m/%Y %H:%M:%S")
    if locale == "ja-JP":
        return f"{value:%Y/%m/%d} {value.hour}:{value:%M:%S}"
    hour, half = value.hour % 12 or 12, "AM" if value.hour < 12 else "PM"
    return f"{value.month}/{value.day}/{value.year} {hour}:{value:%M:%S} {half}"


def _refid(source: str) -> tuple[int, str]:
    """A stable private IPv4 address for a source name."""
    n = hashlib.sha256(source.encode()).digest()[0] % 250 + 1
    return 0x0A000000 + n, f"10.0.0.{n}"


def synchronized(state: HostState) -> bool:
    return state.sync_interval_s is not None and state.time_source not in (None, CMOS)


def seconds_since_sync(state: HostState, now: datetime) -> float | None:
    if not synchronized(state):
        return None
    assert state.sync_interval_s is not None
    return (now - state.sync_epoch).total_seconds() % state.sync_interval_s


def source_text(state: HostState) -> str | None:
    """`w32tm /query /source`: the source name, or the localized CMOS clock name."""
    if synchronized(state):
        return state.time_source
    return _WORDS[state.locale]["cmos"]


def status_text(state: HostState, now: datetime) -> str:
    """`w32tm /query /status /verbose` in the host's culture, lines as Windows orders them."""
    locale = state.locale if state.locale in _WORDS else "en-US"
    w, labels = _WORDS[locale], _LABELS[locale]
    since = seconds_since_sync(state, now)
    tick = f"-23 ({w['tick']} 119.209ns)" if locale == "ja-JP" else f"-23 (119.209ns {w['tick']})"
    if since is None:
        values = [
            w["leap3"], f"0 ({w['unspecified']})", tick, "0.0000000s", "0.0000000s",
            f"0x00000000 ({w['unspecified']})", w["unspecified"], w["cmos"], "10 (1024s)",
            "0.0000000s", "0.0156250s", w["unset"], f"0 ({w['none']})", f"0 ({w['none']})",
            w["nodata"], f"{(now - state.sync_epoch).total_seconds() % 3600:.7f}s",
        ]  # fmt: skip
    else:
        assert state.time_source is not None
        refid, ip = _refid(state.time_source)
        offset = timedelta(minutes=UTC_OFFSET_MIN.get(locale, 0))
        local = state.host_now(now) - timedelta(seconds=since) + offset
        values = [
            w["leap0"], f"3 {w['stratum']}", tick, "0.0312500s", "7.7773722s",
            f"0x{refid:08X} ({w['ip']}:  {ip})", _date(local.replace(tzinfo=None), locale),
            state.time_source, "10 (1024s)", "-0.0038147s", "0.0156250s", w["sync"],
            f"0 ({w['none']})", f"0 ({w['none']})", w["ok"], f"{since:.7f}s",
        ]  # fmt: skip
    lines = [f"{label}: {value}" for label, value in zip(labels, values, strict=True)]
    lines.insert(9, "")  # w32tm separates the verbose part with an empty line
    return "\r\n".join(lines) + "\r\n"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def render_time(state: HostState, now: datetime) -> dict[str, Any]:
    """The gather script's `time` section for this host."""
    sim = state.w32time
    w32 = next((s for s in state.services if s.name.lower() == "w32time"), None)
    running = w32 is not None and w32.status == "Running"
    task = sim.sync_task_last_run
    return {
        "utc_now": _iso(state.host_now(now)),
        "source": source_text(state) if running else None,
        "status_text": status_text(state, now) if running else None,
        "culture": state.locale,
        "utc_offset_min": UTC_OFFSET_MIN.get(state.locale, 0),
        "config": sim.config.model_dump(mode="json"),
        "policy": sim.policy.model_dump(mode="json"),
        "trigger_start": sim.trigger_start,
        # gather.ps1 asks the task only about a stopped W32Time
        "sync_task_last_run": _iso(task) if task and not running else None,
        "sync_task_result": None if running else sim.sync_task_result,
        "part_of_domain": sim.part_of_domain,
        "domain_role": sim.domain_role,
        "forest_root": sim.forest_root,
    }


# --- fix-w32time.ps1 ------------------------------------------------------------------------


def _resync_error(state: HostState, step: bool) -> str | None:
    """Why `w32tm /resync` fails on this host, or None (Windows' behaviour, see the docstring)."""
    sim = state.w32time
    eff = sim.effective()
    kind = (eff.type or "").lower()
    no_data = "The computer did not resync because no time data was available."
    if kind == "nosync":
        return no_data
    if kind == "nt5ds" and (
        not sim.part_of_domain or (sim.domain_role == 5 and sim.forest_root is not False)
    ):
        return no_data
    if kind in ("ntp", "allsync"):
        peers = (eff.ntp_server or "").split()
        if not peers or all(p.split(",")[0].lower().endswith(".invalid") for p in peers):
            return no_data
    ahead = state.clock_offset_s > 0
    if not step and abs(state.clock_offset_s) > sim.limit_s(ahead):
        return "The computer did not resync because the required time change was too big."
    return None


def _state_of(state: HostState) -> dict[str, Any]:
    w32 = next(s for s in state.services if s.name.lower() == "w32time")
    return {
        "type": state.w32time.config.type,
        "ntp_server": state.w32time.config.ntp_server,
        "service": w32.status,
        "start_type": w32.start_type,
    }


def fix(state: HostState, params: dict[str, Any], now: datetime) -> dict[str, Any]:
    """fix-w32time.ps1 version 2 on this host: configure, run, resync; restore on failure."""
    mode = params.get("mode")
    peers = str(params.get("ntp_peers") or "").strip()
    step = params.get("step") is True
    if mode not in ("domhier", "manual"):
        raise FixError(f"fix.w32time: mode must be domhier or manual, not '{mode}'")
    if mode == "manual" and not peers:
        raise FixError("fix.w32time: mode manual needs ntp_peers")
    if not _PEERS.fullmatch(peers):
        raise FixError("fix.w32time: ntp_peers may only hold host names, addresses and ,0xN flags")
    if not any(s.name.lower() == "w32time" for s in state.services):
        raise FixError("Cannot find any service with service name 'W32Time'.")
    sim = state.w32time
    before = _state_of(state)
    saved = (sim.config, before["service"], before["start_type"])
    start_type = "Automatic" if before["start_type"] == "Disabled" else before["start_type"]
    state.set_service("W32Time", status="Running", start_type=start_type)
    if mode == "manual":
        sim.config = sim.config.model_copy(update={"type": "NTP", "ntp_server": peers})
    else:
        sim.config = sim.config.model_copy(update={"type": "NT5DS"})
    error = _resync_error(state, step)
    if error is not None:
        sim.config = saved[0]
        state.set_service("W32Time", status=saved[1], start_type=saved[2])
        raise FixError(
            f"w32tm /resync failed (exit code 1): {error}; the previous W32Time settings "
            "were restored"
        )
    eff = sim.effective()
    if (eff.type or "").lower() == "nt5ds":
        if state.time_source in (None, CMOS) or "," in (state.time_source or ""):
            state.time_source = "DC01.corp.contoso.com"  # as the baseline names its DCs
    else:
        state.time_source = (eff.ntp_server or "").split()[0]
    state.clock_offset_s = 0.0
    state.sync_interval_s = state.sync_interval_s or 3600
    state.sync_epoch = now
    after = _state_of(state)
    changes = [{"target": "W32Time", "before": before, "after": after, "changed": before != after}]
    if step:
        kept = {
            "max_pos_phase_correction": sim.config.max_pos_phase_correction,
            "max_neg_phase_correction": sim.config.max_neg_phase_correction,
        }
        changes.append(
            {
                "target": "W32Time\\Config MaxPos/MaxNegPhaseCorrection "
                "(lifted for one resync: clock stepped)",
                "before": kept,
                "after": kept,
                "changed": True,
            }
        )
    return {"changes": changes}
