"""`python -m bench [IDS…] [--scale N] [--repeat R]` — run benchmarks, print medians and ratios."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from bench import audit, catalog, export, ingest, load, query

BENCHMARKS = {
    "ingest": ingest.run,
    "query": query.run,
    "export": export.run,
    "catalog": catalog.run,
    "audit": audit.run,
    "load": load.run,
}
#: Run when no ids are given; `load` runs only when named (two minutes of 50 clients).
DEFAULT = [bench_id for bench_id in BENCHMARKS if bench_id != "load"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("ids", nargs="*", default=DEFAULT, help=f"any of {', '.join(BENCHMARKS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = rows of the README's table")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pubdata-bench"))
    args = parser.parse_args(argv)
    unknown = set(args.ids) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results_dir = Path(__file__).parent / "results"
    results_dir.mkdir(exist_ok=True)
    for bench_id in args.ids:
        result = BENCHMARKS[bench_id](args.workdir / bench_id, args.scale, args.repeat)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = results_dir / f"{bench_id}-{stamp}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")
        print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
