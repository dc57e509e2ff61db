#!/bin/sh
# `make demo`: the whole job on a simulated fleet in under a minute — audit, plan (the
# dry-run diff), apply, audit again — then what to type on a real inventory.
#
# Everything the demo records stays in its own directory: the run history and the apply
# journal go to DIR/fleet.db (--db on every command that records), never to your own
# fleet.db. The lab is stopped when the demo ends, however it ends.
#
#   sh scripts/demo.sh [DIR]
#   (FLEET=path/to/fleet; DEMO_HOSTS, DEMO_FAULTS, DEMO_TIMEOUT; DEMO_LAB_ARGS: more
#   `fleet lab up` options, e.g. "--port 0 --base-address 127.61.0.1" beside another lab)
set -u
FLEET=${FLEET:-.venv/bin/fleet}
DIR=${1:-demo-lab}
HOSTS=${DEMO_HOSTS:-25}
FAULTS=${DEMO_FAULTS:-mixed}
TIMEOUT=${DEMO_TIMEOUT:-8}
INV=$DIR/inventory.yml
DB=$DIR/fleet.db
PLAN=$DIR/plan.json

# Show the command, run it, show its exit code and time; go on whatever the code (1 and 3
# are news, not failures of the demo).
run() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    start=$(date +%s)
    "$@"
    printf '(exit %s, %s s)\n' "$?" "$(($(date +%s) - start))"
}
say() { printf '\n\033[1;36m%s\033[0m\n' "$*"; }

"$FLEET" lab down --dir "$DIR" >/dev/null 2>&1
rm -f "$DB" "$DB-wal" "$DB-shm" "$PLAN"
# shellcheck disable=SC2086 # DEMO_LAB_ARGS is a list of options
"$FLEET" lab up --dir "$DIR" --hosts "$HOSTS" --seed 7 --faults "$FAULTS" --detach \
    ${DEMO_LAB_ARGS:-} || exit 2
trap '"$FLEET" lab down --dir "$DIR" >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM

say "1. Audit: every check on every host at once, read-only (one lab host hangs on purpose, so --timeout $TIMEOUT)."
run "$FLEET" audit -i "$INV" --timeout "$TIMEOUT" --db "$DB"

say "2. Plan: the exact changes, computed from what the hosts answered. Nothing changes yet."
run "$FLEET" plan -i "$INV" --timeout "$TIMEOUT" -o "$PLAN"

say "3. Apply the plan you just read: journaled, verified, rolled back where a fix does not hold."
# --timeout: a lab host's firewall section takes its whole time budget on purpose.
run "$FLEET" apply "$PLAN" --yes --allow-disruptive --db "$DB" --timeout 20

say "4. Audit again, and compare with step 1 (fleet sweep = audit + what changed)."
run "$FLEET" sweep -i "$INV" --timeout "$TIMEOUT" --db "$DB"

say "Left over: hosts that could not be reached, and changes fleet will not make for you
(Group Policy decides the value, no replacement certificate, a reboot pending)."
cat <<NEXT

The demo kept its history in $DB:
  $FLEET journal --db $DB              # what apply changed, host by host
  $FLEET history runs --db $DB         # the two audits

On your own fleet (an Ansible inventory works as it is):
  fleet inventory list -i inventory.yml       # what it resolves to; nothing is contacted
  fleet audit -i inventory.yml                # read-only
  fleet plan -i inventory.yml -o plan.json    # review the diff: nothing changes yet
  fleet apply plan.json                       # asks before it changes anything
NEXT
