"""A real headless Chromium (Debian's `chromium` package; `.ci/run` installs it when missing),
driven from its command line: the DOM after the page's scripts ran, its console messages, and
screenshots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

_CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\] (?P<message>.*)")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "no Chromium on PATH: the report and UI tests need a real browser; install Debian's package "
        "(apt-get install chromium), as .ci/run does"
    )


def _run(url: str, *flags: str, user_data: Path, wait_ms: int) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={user_data}",
        "--enable-logging=stderr",
        "--v=0",
        f"--virtual-time-budget={wait_ms}",
        *flags,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def dom_and_console(url: str, user_data: Path, *, wait_ms: int = 5000) -> tuple[str, list[str]]:
    """The page's DOM once its scripts ran, and every console message it logged (errors included)."""
    result = _run(url, "--dump-dom", user_data=user_data, wait_ms=wait_ms)
    return result.stdout, [match["message"] for match in _CONSOLE.finditer(result.stderr)]


def screenshot(url: str, path: Path, user_data: Path, *, size: str = "1280,2400", wait_ms: int = 5000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        url, f"--screenshot={path}", f"--window-size={size}", "--hide-scrollbars", user_data=user_data, wait_ms=wait_ms
    )
    assert path.stat().st_size > 10_000, f"{path}: the screenshot is blank"
    # Kept for a person to look at when COSTWATCH_SCREENSHOTS names a folder.
    keep = os.environ.get("COSTWATCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def svg_attributes(dom: str) -> list[dict[str, str]]:
    """The attributes of every <svg> element in the DOM."""
    return [dict(re.findall(r'([\w:-]+)="([^"]*)"', tag)) for tag in re.findall(r"<svg\b[^>]*>", dom)]
