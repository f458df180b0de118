#!/usr/bin/env bash
# Install pubdata with its test dependencies into .venv and run every check: ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# The portal's browser tests drive Debian's Chromium (never a browser download of Playwright's own).
# A small CJK font (1.6 MB) so that the journeys' screenshots show the Chinese pages as people see them.
if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  packages="chromium fonts-wqy-microhei"
  # shellcheck disable=SC2086
  apt-get install -y -q $packages >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $packages >/dev/null; }
fi
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
# A throw-away PostgreSQL for the tests that prove the metadata schema runs there too.
PUBDATA_TEST_PG_URL=$(./scripts/test-postgres.sh)
export PUBDATA_TEST_PG_URL
set +e
.venv/bin/python -m pytest -n 2 --doctest-modules src tests "$@"
status=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
if [ "$status" -ne 0 ]; then
  echo "pytest failed with exit code $status" >&2
  exit "$status"
fi
# The clock-bound tests (@pytest.mark.clock: the demo's cases, the portal's deadlines) again with the
# clock pinned at other instants — one earlier this year, two past the working-day calendar's data
# (chinesecalendar knows 2004–2026; later deadlines are provisional) — so that a suite that passes
# today passes next month too.
for now in 2026-03-15T01:00:00Z 2027-06-30T01:00:00Z 2028-02-29T01:00:00Z; do
  echo "clock-bound tests at $now"
  PUBDATA_TEST_NOW=$now .venv/bin/python -m pytest -q -n 2 -m clock tests
done
# The declared dependency floors still run: the lowest versions in a venv of their own, a smoke test.
./scripts/lowest-deps.sh
