#!/usr/bin/env bash
# Install the LOWEST versions pyproject.toml allows for pubdata's direct dependencies, in a venv of
# their own, and run a smoke test (import, help, init, the demo's ingest, a query through the gateway).
# A floor that crashes fails here instead of on a user's machine: the declared minimums are a promise.
# Usage: scripts/lowest-deps.sh [VENV]   (default: $TMPDIR/pubdata-lowest-deps; reused when it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-${TMPDIR:-/tmp}/pubdata-lowest-deps}
started=$SECONDS
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if "$venv/bin/python" -m pip install -q --disable-pip-version-check uv 2>/dev/null; then
  # --upgrade: re-resolve even where a reused venv already satisfies a (lowered) floor with more.
  "$venv/bin/python" -m uv pip install -q --python "$venv/bin/python" --resolution lowest-direct --upgrade -e .
else
  # Without uv: pin every direct dependency to its declared floor (`name>=X` becomes `name==X`).
  constraints=$(mktemp)
  "$venv/bin/python" - "$constraints" <<'PY'
import re, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
pins = [f"{m[1]}=={m[2]}" for d in deps if (m := re.match(r"([A-Za-z0-9_.\-\[\]]+)>=([^,;\s]+)", d))]
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
PY
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" -e .
fi
echo "lowest direct dependencies installed in $((SECONDS - started)) s"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pubdata="$venv/bin/pubdata"
"$venv/bin/python" -c "import pubdata.api.app, pubdata.web.visitor, pubdata.gateway"
# The working-day calendar must know this year's holidays (National Day, Spring Festival 2026).
"$venv/bin/python" -c "from datetime import date; from pubdata.workflow.working_days import is_working_day as w
assert not w(date(2026, 10, 1)) and not w(date(2026, 2, 17)) and w(date(2026, 10, 9)), 'calendar too old'"
"$pubdata" --help >/dev/null
"$pubdata" init --help >/dev/null
"$pubdata" init --home "$work/init" >/dev/null
"$pubdata" demo --no-serve --scale 0.001 --json --home "$work/demo" >/dev/null
"$pubdata" query --home "$work/demo" --as jx_zgh --purpose "小微企业园区产改职工参保核查" \
  --application jx_park_workers "SELECT count(*) AS n FROM hrss_social_insurance" | grep -q '"rows"'
"$pubdata" catalog list --home "$work/demo" >/dev/null
echo "lowest direct dependencies: smoke test passed in $((SECONDS - started)) s"
