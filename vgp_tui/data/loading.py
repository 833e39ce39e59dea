"""One entry point for every data kind: :func:`load_dataset` returns a whole data set as tensors.

The trainer samples random batches by index from ``Dataset.x`` and ``Dataset.y`` (no DataLoader), so
every loader materialises its data in memory. The real loaders (CIFAR-10, IMDB) read the official file
formats from a folder; where there is none they try one download with a socket timeout, and offline
they raise a one-line :class:`~vgp_tui.errors.UserError` that says how to get the data or to pass
``--synthetic`` for the labelled stand-in. Nothing here imports textual.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vgp_tui.data.specs import DATA_SPECS
from vgp_tui.errors import UserError, closest
from vgp_tui.models.configs import Task

DOWNLOAD_TIMEOUT_S = 15.0
"""Seconds any one socket operation of a download may wait: offline, the connect fails fast instead of
hanging; on a slow but working link the download goes on, since each read gets its own timeout."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole data set in memory. ``eq=False``: two data sets are compared by identity, because
    field-wise ``==`` on tensors has no single truth value."""

    x: torch.Tensor
    """Inputs, one example per row: float features/images/sequences, or long token ids."""
    y: torch.Tensor
    """Targets: long class ids (``task.kind == "classify"``) or float values of shape (N,) (``regress``)."""
    task: Task
    label: str
    """What the screen shows, e.g. ``CIFAR-10 (50000 images)`` or ``synthetic stand-in for CIFAR-10``."""
    synthetic: bool
    """True where the data was generated in-process (spirals, adding problem, the stand-ins)."""

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} examples but y has {self.y.shape[0]}")
        if tuple(self.x.shape[1:]) != tuple(self.task.input_shape):
            raise ValueError(f"x examples have shape {tuple(self.x.shape[1:])}, task says {self.task.input_shape}")

    def __len__(self) -> int:
        return int(self.x.shape[0])


def load_dataset(
    kind: str,
    spec: Any = None,
    *,
    data_dir: str | Path | None = None,
    synthetic: bool = False,
    seed: int = 0,
) -> Dataset:
    """Load or generate the data set of ``kind`` (a key of ``DATA_SPECS``) with settings ``spec``.

    Args:
        kind: ``spirals``, ``adding``, ``cifar10`` or ``imdb``.
        spec: that kind's settings dataclass (``vgp_tui.data.specs``); None takes its defaults.
        data_dir: where the real data set lies (``--data-dir``); None uses the cache folder
            (:func:`cache_dir`) and downloads into it where there is a network.
        synthetic: use the labelled synthetic stand-in for cifar10 or imdb (``--synthetic``);
            spirals and adding are always generated.
        seed: seeds generation and the IMDB shuffle; the same seed gives the same tensors.

    Raises:
        UserError: unknown kind, a missing ``--data-dir``, or no copy of a real data set and no way
            to download it.
    """
    spec_type = DATA_SPECS.get(kind)
    if spec_type is None:
        raise UserError(f"unknown data kind '{kind}'; known: {', '.join(DATA_SPECS)}" + closest(kind, DATA_SPECS))
    if spec is None:
        spec = spec_type()
    elif not isinstance(spec, spec_type):
        raise TypeError(f"data kind '{kind}' needs a {spec_type.__name__}, got {type(spec).__name__}")

    # Imported here so that loading.py and the loaders can import each other's names without a cycle.
    from vgp_tui.data import synthetic as generated

    if kind == "spirals":
        return generated.spirals(spec, seed)
    if kind == "adding":
        return generated.adding_problem(spec, seed)
    if kind == "cifar10":
        if synthetic:
            return generated.cifar_standin(spec, seed)
        from vgp_tui.data.cifar import load_cifar10

        return load_cifar10(spec, data_dir=data_dir)
    if kind == "imdb":
        if synthetic:
            return generated.long_range_sentiment(spec, seed)
        from vgp_tui.data.imdb import load_imdb

        return load_imdb(spec, data_dir=data_dir, seed=seed)
    raise AssertionError(f"DATA_SPECS has '{kind}' but load_dataset does not handle it")  # pragma: no cover


def cache_dir() -> Path:
    """Where real data sets are looked for and downloaded to when no ``--data-dir`` is given:
    ``$VGP_TUI_DATA``, else ``$XDG_CACHE_HOME/vgp-tui``, else ``~/.cache/vgp-tui``."""
    env = os.environ.get("VGP_TUI_DATA")
    if env:
        return Path(env).expanduser()
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
        raise UserError(
            f"{dataset}: no copy found in {root} and the download failed ({one_line(exc)}); "
            f"to get it: run once with a network, or download {archive.name} from {home_page} and extract it "
            f"into {root} (or pass --data-dir), or pass --synthetic for the labelled stand-in"
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
