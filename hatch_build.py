"""Build hook: put the documentation sites' browser assets into the package.

On every wheel build, editable ones included (``pip install .``, ``pip install -e .``),
this copies the files listed in ``src/clinic/api/site_assets.py`` out of the npm
packages that ``docs-assets/package-lock.json`` pins (versions and integrity hashes)
into ``src/clinic/api/docs_assets/``. The packages come from, in order:

1. nothing, when that folder's manifest already names the pinned versions;
2. ``docs-assets/node_modules``, when it holds the pinned versions (the image build
   puts it there from a Node stage, so the Python stage needs no npm);
3. ``npm ci --ignore-scripts`` in a temporary copy of ``docs-assets/``.

No third-party bundle is ever committed. When npm is missing or fails, the build
warns and finishes: the API then answers the documentation pages with a 503 that
says what is missing and how to get it.
"""

import json
import runpy
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NPM_TIMEOUT = 600
"""Seconds npm may take to fetch the packages; a slow mirror is better than none."""


class AssetsUnavailableError(Exception):
    """The assets could not be had; the message says why, for the build's output."""


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Hatchling's hook (``[tool.hatch.build.hooks.custom]``) that fetches the assets."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # the sdist ships docs-assets/ and this hook instead
        root = Path(self.root)
        table = runpy.run_path(str(root / "src" / "clinic" / "api" / "site_assets.py"))
        try:
            how = provide_assets(root, table)
        except AssetsUnavailableError as error:
            self.app.display_warning(
                f"clinic: the documentation sites' assets are missing ({error}). "
                "/docs and /asyncapi will answer 503 until you reinstall with npm on "
                "the PATH (pip install -e .) or build the image."
            )
            return
        self.app.display_info(f"clinic: documentation assets {how}")


def pinned_packages(assets: Path, names: list[str]) -> dict[str, dict[str, str]]:
    """The version and integrity hash the lockfile pins for each of ``names``."""
    lock = json.loads((assets / "package-lock.json").read_text(encoding="utf-8"))
    pinned = {}
    for name in names:
        entry = lock["packages"].get(f"node_modules/{name}")
        if entry is None:
            raise AssetsUnavailableError(f"docs-assets/package-lock.json does not pin {name}")
        pinned[name] = {"version": entry["version"], "integrity": entry["integrity"]}
    return pinned


def provide_assets(root: Path, table: dict[str, Any]) -> str:
    """Make the asset folder hold the pinned files; how it was done, for the build's output."""
    files: dict[str, tuple[str, str]] = table["FILES"]
    licences: dict[str, str] = table["LICENCES"]
    target = root / "src" / "clinic" / "api" / table["FOLDER"]
    manifest = target / table["MANIFEST"]
    sources = root / "docs-assets"
    pinned = pinned_packages(sources, sorted({package for package, _ in files.values()}))
    if _manifest_matches(manifest, pinned) and all((target / f).is_file() for f in files):
        return "already in place for the pinned versions"
    if _installed_versions(sources / "node_modules", pinned):
        _copy_out(sources / "node_modules", target, table, pinned, licences)
        return "copied from docs-assets/node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise AssetsUnavailableError("npm is not on the PATH")
    with tempfile.TemporaryDirectory(prefix="clinic-docs-assets-") as work:
        for name in ("package.json", "package-lock.json", ".npmrc"):
            if (sources / name).exists():
                shutil.copy2(sources / name, Path(work) / name)
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=peer"]
        try:
            done = subprocess.run(
                command, cwd=work, capture_output=True, text=True, timeout=NPM_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise AssetsUnavailableError(f"npm ci did not finish: {error}") from error
        if done.returncode != 0:
            # npm names the cause first (code, errno, the URL); its advice follows.
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise AssetsUnavailableError("npm ci failed: " + " / ".join(lines[:4]))
        if not _installed_versions(Path(work) / "node_modules", pinned):
            raise AssetsUnavailableError("npm ci installed other versions than the lockfile pins")
        _copy_out(Path(work) / "node_modules", target, table, pinned, licences)
    return "fetched with npm ci"


def _manifest_matches(manifest: Path, pinned: dict[str, dict[str, str]]) -> bool:
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))["packages"]
    except (OSError, ValueError, KeyError):
        return False
    return all(
        recorded.get(name, {}).get(key) == value
        for name, pin in pinned.items()
        for key, value in pin.items()
    )


def _installed_versions(modules: Path, pinned: dict[str, dict[str, str]]) -> bool:
    """Whether ``modules`` (a node_modules folder) holds exactly the pinned versions."""
    for name, pin in pinned.items():
        try:
            meta = json.loads((modules / name / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if meta.get("version") != pin["version"]:
            return False
    return True


def _copy_out(
    modules: Path,
    target: Path,
    table: dict[str, Any],
    pinned: dict[str, dict[str, str]],
    licences: dict[str, str],
) -> None:
    """Copy the listed files into a fresh ``target``, the manifest last."""
    packages = {}
    for name, pin in pinned.items():
        meta = json.loads((modules / name / "package.json").read_text(encoding="utf-8"))
        if meta.get("license") != licences[name]:
            raise AssetsUnavailableError(
                f"{name} {pin['version']} is licensed {meta.get('license')!r}, "
                f"not {licences[name]!r} as site_assets.py records: check it before use"
            )
        packages[name] = {**pin, "license": licences[name]}
    files: dict[str, tuple[str, str]] = table["FILES"]
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for served, (package, inside) in files.items():
        source = modules / package / inside
        if not source.is_file():
            raise AssetsUnavailableError(f"{package} {pinned[package]['version']} has no {inside}")
        (staging / served).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staging / served)
    (staging / table["MANIFEST"]).write_text(
        json.dumps({"packages": packages}, indent=2) + "\n", encoding="utf-8"
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
