"""Where the real data sets lie, and their one download: the cache folder, the user's ``--data-dir``,
the official archive fetched with a socket timeout, checked by md5 and extracted safely.

Shared by the CIFAR-10 and IMDB loaders. Plain Python: no torch, so ``--data-dir`` can be checked
before anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vgp_tui.errors import DataMissing, UserError

DOWNLOAD_TIMEOUT_S = 15.0
"""Seconds any one socket operation of a download may wait: offline, the connect fails fast instead of
hanging; on a slow but working link the download goes on, since each read gets its own timeout."""


def cache_dir() -> Path:
    """Where real data sets are looked for and downloaded to when no ``--data-dir`` is given:
    ``$VGP_TUI_DATA``, else ``$XDG_CACHE_HOME/vgp-tui``, else ``~/.cache/vgp-tui``."""
    env = os.environ.get("VGP_TUI_DATA")
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise UserError(f"VGP_TUI_DATA={env} is not a folder: point it at the folder for data sets")
        return path
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vgp-tui"


def user_data_dir(data_dir: str | Path) -> Path:
    """The user's ``--data-dir`` as a Path; a UserError if it is not an existing folder."""
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise UserError(f"--data-dir {data_dir} does not exist")
    if not path.is_dir():
        raise UserError(f"--data-dir {data_dir} is not a folder")
    return path


def chosen_data_dir(data_dir: str | Path, synthetic: bool, scenario: Any) -> Path:
    """:func:`user_data_dir`, refused where the stand-in is asked for too (``--synthetic``, or the
    preset's ``synthetic = true``): the folder would be ignored without a word."""
    path = user_data_dir(data_dir)
    if synthetic or scenario.synthetic:
        said = "--synthetic" if synthetic else f"preset {scenario.name} ([data] synthetic = true)"
        raise UserError(f"--data-dir and {said} do not go together: the real data in {data_dir}, or the "
                        "synthetic stand-in?")
    return path


def download_file(url: str, dest: Path, *, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``dest`` (through ``dest.part``, so an interrupted download never looks
    finished). Raises OSError (``urllib.error.URLError`` is one) or ``TimeoutError`` on failure.

    Tests replace this function, so that no test opens a socket."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "vgp-tui"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def download_archive(
    dataset: str, url: str, archive: Path, md5: str, home_page: str, extract: Callable[[], None]
) -> None:
    """Download a data set's official archive, check its md5, extract it, and delete the archive.

    Every failure is one UserError line that says how to get the data another way.
    """
    root = archive.parent
    try:
        download_file(url, archive)
    except Exception as exc:  # offline, timed out, refused, HTTP error, disk full: all end the same way
        raise DataMissing(
            f"{dataset}: no copy found in {root} and the download failed ({one_line(exc)}); "
            f"to get it: run once with a network, or download {archive.name} from {home_page} and extract it "
            f"into {root} (or pass --data-dir), or pass --synthetic for the labelled stand-in",
            dataset=dataset, why=f"not in {root} and not downloadable here",
        ) from None
    try:
        if md5_of(archive) != md5:
            raise UserError(
                f"{dataset}: the downloaded {archive} is corrupted (md5 differs from the official one) and "
                "was removed; run again, or pass --synthetic for the labelled stand-in"
            )
        extract()
    finally:
        archive.unlink(missing_ok=True)  # extracted or bad: either way not worth keeping


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_tar(archive: Path, dest: Path, keep: Callable[[str], bool] = lambda name: True) -> None:
    """Extract the members of ``archive`` whose names pass ``keep`` into ``dest``.

    ``filter="data"`` refuses absolute paths, ``..``, links out of ``dest`` and device files, so a
    tampered archive cannot write outside ``dest``."""
    with tarfile.open(archive, "r:*") as tar:
        members = [m for m in tar.getmembers() if keep(m.name)]
        tar.extractall(dest, members=members, filter="data")


def one_line(exc: BaseException) -> str:
    """An exception as a short single line, for the end of a UserError message."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if len(text) > 120:
        text = text[:117] + "..."
    return text
