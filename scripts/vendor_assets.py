"""Refresh the portal's vendored JavaScript (htmx, ECharts) from the npm registry.

The portal serves every asset itself: no CDN, so it works on an isolated government network and the
Content-Security-Policy can stay ``script-src 'self'``. This script runs ``npm pack`` for each package
into a temporary directory, copies the minified build and its licence files into
``src/pubdata/web/static/vendor/<name>/`` and writes ``VERSIONS.json`` with each file's SHA-256,
which a test compares with the files.

Usage: ``python scripts/vendor_assets.py`` (needs ``npm``); commit the result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "src" / "pubdata" / "web" / "static" / "vendor"
#: name → (npm spec, files to take from the package: path inside the tarball → name to store).
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "htmx": ("htmx.org@2", {"package/dist/htmx.min.js": "htmx.min.js", "package/LICENSE": "LICENSE"}),
    "echarts": (
        "echarts@5",
        {
            "package/dist/echarts.min.js": "echarts.min.js",
            "package/LICENSE": "LICENSE",
            "package/NOTICE": "NOTICE",
            "package/licenses/LICENSE-d3": "LICENSE-d3",
        },
    ),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(spec: str, into: Path) -> tuple[Path, str]:
    """The tarball of `spec` and its exact version, as npm reports them."""
    out = subprocess.run(  # noqa: S603 - fixed arguments, the spec comes from PACKAGES
        ["npm", "pack", "--json", spec],  # noqa: S607 - npm from PATH is the point
        cwd=into,
        check=True,
        capture_output=True,
        text=True,
    )
    facts = json.loads(out.stdout)[0]
    return into / facts["filename"], facts["version"]


def vendor(name: str, spec: str, files: dict[str, str], work: Path) -> dict[str, object]:
    tarball, version = _pack(spec, work)
    target = VENDOR / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        for member, stored in files.items():
            source = archive.extractfile(member)
            if source is None:
                raise SystemExit(f"{spec}: {member} is not a file in the package")
            (target / stored).write_bytes(source.read())
    hashes = {f"{name}/{stored}": sha256(target / stored) for stored in files.values()}
    return {"package": spec.rsplit("@", 1)[0], "version": version, "files": hashes}


def main() -> None:
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (spec, files) in PACKAGES.items():
            manifest[name] = vendor(name, spec, files, Path(tmp))
            print(f"{name}: {manifest[name]}")
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (VENDOR / "VERSIONS.json").write_text(text, "utf-8")


if __name__ == "__main__":
    main()
