"""The options every host-touching command spells the same way (`-i`, `-l`, `-p`, `-c`...).

Kept apart from fleet.cli.common, which imports the audit pipeline: a command that only
reads an inventory (`fleet inventory`) declares its options without that import.
"""

from __future__ import annotations

from typing import Any

import typer

from fleet.cli.flags import in_range
from fleet.errors import InputError

INVENTORY_HELP = (
    "Inventory: an Ansible-style YAML or INI file, a folder of them, or an executable that "
    "prints Ansible's inventory JSON (--list); repeat -i to merge several, as Ansible does."
)
InventoryOpt = typer.Option(..., "-i", "--inventory", help=INVENTORY_HELP, show_default=False)
PlaybookOpt = typer.Option(
    None,
    "-p",
    "--playbook",
    help="Playbook YAML.",
    show_default="the shipped rdp-health.yml",
)
LimitOpt = typer.Option(
    None,
    "-l",
    "--limit",
    help="Host pattern: names, globs, groups; 'a:b' union, 'a:&b' intersection, 'a:!b' exclusion.",
)


def parse_forks(value: str | int) -> int:
    """`-f/--forks N` (Ansible's spelling; `-c/--concurrency` is the same option). `-f` meant
    the output format before: `-f json` says where the format went, in one line."""
    if isinstance(value, int):
        number = value
    else:
        try:
            number = int(value.strip())
        except ValueError:
            raise InputError(
                f"-f/--forks is how many hosts are worked on at once (as in Ansible), not "
                f"{value!r}; the output format is --format {value}"
            ) from None
    if number < 1:
        raise InputError(f"-f/--forks must be at least 1, not {number}")
    return number


def forks_opt(default: int, help_text: str = "Hosts worked on at once (Ansible's forks).") -> Any:
    """`-f/--forks N`, with `-c/--concurrency` as its alias."""
    return typer.Option(
        default,
        "--forks",
        "-f",
        "--concurrency",
        "-c",
        parser=parse_forks,
        metavar="N",
        help=help_text,
    )


ConcurrencyOpt = forks_opt(50)
#: The audit's per-host deadline: also `apply -i`'s planning gather (--plan-timeout).
AUDIT_TIMEOUT_S = 30.0
TimeoutOpt = typer.Option(
    AUDIT_TIMEOUT_S,
    "--timeout",
    "-t",
    callback=in_range("--timeout", 0.1, unit=" s"),
    help="Per-host deadline in seconds (connect + all work).",
)
MaxAuthFailuresOpt = typer.Option(
    3,
    "--max-auth-failures",
    callback=in_range("--max-auth-failures", 0),
    metavar="K",
    help="After K hosts reject a credential that no host accepted, do not try it on the "
    "others (no account lockouts; 0: try every host).",
)
AskPassOpt = typer.Option(
    False, "--ask-pass", "-k", help="Prompt once for a password for hosts without another source."
)
RetriesOpt = typer.Option(
    2,
    "--retries",
    callback=in_range("--retries", 0),
    help="Extra attempts for transient connection errors.",
)
FormatOpt = typer.Option("table", "--format", help="Output: table, json, junit, prom or html.")


def _format_moved(value: str | None) -> None:
    if value is not None:
        raise InputError(
            f"-f is --forks now (hosts at once, as in Ansible) and this command has none; "
            f"the output format is --format {value}"
        )


#: A hidden `-f` on commands without --forks: an old `-f json` gets a one-line pointer to
#: --format instead of "no such option".
FormatMovedOpt = typer.Option(None, "-f", hidden=True, callback=_format_moved)
OutputOpt = typer.Option(
    None, "--output", "-o", help="Write the --format output to this file, not stdout."
)
ReportOpt = typer.Option(
    [], "--report", help="Also write FORMAT:PATH (repeatable), e.g. junit:audit.xml."
)
VerboseOpt = typer.Option(
    0,
    "--verbose",
    "-v",
    count=True,
    help="More detail, step by step: -v evidence and fixes (plans: the script each change "
    "runs), -vv every check and the info log (the run's summary), -vvv connections, "
    "scripts and a line per host (debug logs).",
)
StrictOpt = typer.Option(False, "--strict", help="Warnings fail the run (exit 1).")
LogFormatOpt = typer.Option(
    "auto", "--log-format", help="Log format: auto (JSON when not a TTY), json or console."
)
LogFileOpt = typer.Option(None, "--log-file", help="Write logs to this file instead of stderr.")
LOG_LEVELS = ("debug", "info", "warning", "error")
#: The log level each -v count asks for (-vv: info; -vvv: connections, scripts, hosts).
VERBOSE_LEVELS = {2: "info", 3: "debug"}


def log_level_for(level: str | None, verbose: int) -> str | None:
    """The more detailed of --log-level and what -vv / -vvv ask for. None (no --log-level
    and at most -v) leaves the default to fleet.logs: info for JSON logs, else warning."""
    wanted = VERBOSE_LEVELS.get(min(verbose, 3))
    if wanted is None or level is None:
        return wanted or level
    return min(level.lower(), wanted, key=lambda name: LOG_LEVELS.index(name))


LogLevelOpt = typer.Option(
    None,
    "--log-level",
    help="debug, info, warning or error.",
    show_default="info for JSON logs (one summary event per run), else warning",
)
WaiversOpt = typer.Option(
    None,
    "--waivers",
    help="Accepted risks: a YAML list of {check, hosts, reason, owner, expires}. A live waiver "
    "turns that check's fail or warn on those hosts into waived (not a finding, not planned).",
)


def _limit_not_a_count(value: str | None) -> None:
    if value is not None:
        raise InputError(
            f"--limit is a host pattern in fleet (as in Ansible), not a number of runs; "
            f"use --last {value}"
        )


#: `journal` and `history runs` took `--limit N` for "the last N runs": a hidden --limit now
#: says to use --last, so a script written for the old meaning fails in one clear line.
LimitIsNotACountOpt = typer.Option(None, "--limit", hidden=True, callback=_limit_not_a_count)
# Scale-out on Dask (fleet.cluster; `pip install 'fleet[dask]'`): audit, sweep, plan, apply.
WorkersOpt = typer.Option(
    1,
    "--workers",
    help="Shard the hosts over a local Dask cluster of N worker processes (1: this process).",
)
SchedulerOpt = typer.Option(
    None,
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Shard the hosts over an existing Dask cluster (tcp:// or tls://); "
    "fleet_dask_resources pins hosts to workers.",
)
