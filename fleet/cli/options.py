"""The options every host-touching command spells the same way (`-i`, `-l`, `-p`, `-c`...).

Kept apart from fleet.cli.common, which imports the audit pipeline: a command that only
reads an inventory (`fleet inventory`) declares its options without that import.
"""

from __future__ import annotations

import typer

from fleet.cli.flags import in_range

InventoryOpt = typer.Option(
    ..., "-i", "--inventory", help="Inventory file (Ansible-style YAML or INI).", show_default=False
)
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
ConcurrencyOpt = typer.Option(
    50,
    "--concurrency",
    "-c",
    callback=in_range("--concurrency", 1),
    help="Hosts worked on at once.",
)
TimeoutOpt = typer.Option(
    30.0,
    "--timeout",
    "-t",
    callback=in_range("--timeout", 0.1, unit=" s"),
    help="Per-host deadline in seconds (connect + all work).",
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
FormatOpt = typer.Option(
    "table", "--format", "-f", help="Output: table, json, junit, prom or html."
)
OutputOpt = typer.Option(
    None, "--output", "-o", help="Write the --format output to this file, not stdout."
)
ReportOpt = typer.Option(
    [], "--report", help="Also write FORMAT:PATH (repeatable), e.g. junit:audit.xml."
)
VerboseOpt = typer.Option(False, "-v", "--verbose", help="Show evidence and fixes.")
StrictOpt = typer.Option(False, "--strict", help="Warnings fail the run (exit 1).")
LogFormatOpt = typer.Option(
    "auto", "--log-format", help="Log format: auto (JSON when not a TTY), json or console."
)
LogFileOpt = typer.Option(None, "--log-file", help="Write logs to this file instead of stderr.")
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
