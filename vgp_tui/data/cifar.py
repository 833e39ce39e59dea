"""CIFAR-10 (Krizhevsky 2009) through ``torchvision.datasets.CIFAR10``, as one normalised float tensor.

Where the copy is looked for:

- ``--data-dir DIR``: DIR must hold ``cifar-10-batches-py/`` (or be that folder), or the official
  ``cifar-10-python.tar.gz``, which is extracted there. Nothing is downloaded into a folder the user
  named: an explicit folder means "my copy is here", so a wrong path is reported at once rather than
  filled with 170 MB from the network.
- otherwise the cache folder (:func:`~vgp_tui.data.download.cache_dir`): where the copy is missing, one
  download is tried with a socket timeout; offline that fails within seconds and the user is told how to
  get the data or to pass ``--synthetic`` for the labelled stand-in.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torchvision.datasets import CIFAR10

from vgp_tui.data.download import cache_dir, download_archive, extract_tar, one_line, user_data_dir
from vgp_tui.data.dataset import Dataset
from vgp_tui.data.specs import Cifar10Spec, Task
from vgp_tui.errors import DataMissing, UserError

FOLDER = CIFAR10.base_folder  # "cifar-10-batches-py"
ARCHIVE = CIFAR10.filename  # "cifar-10-python.tar.gz"
ARCHIVE_URL = CIFAR10.url
ARCHIVE_MD5 = CIFAR10.tgz_md5
HOME_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
"""Per-channel mean and standard deviation of the 50 000 training images over all their pixels (the
also often quoted (0.2023, 0.1994, 0.2010) are not the data set's standard deviations)."""


class _ExistingCIFAR10(CIFAR10):
    """torchvision's CIFAR10 that checks the batch files exist instead of checking their md5 sums.

    torchvision hashes all seven files (about 180 MB) on every construction, which costs a second or
    more each time a run starts, and rejects any files but the exact official ones, such as the tiny
    files in the real format that the tests write. The official archive's md5 is still checked, by
    :func:`load_cifar10` after a download, before anything is extracted.
    """

    def _check_integrity(self) -> bool:
        return _has_copy(Path(self.root))

    def _load_meta(self) -> None:
        # Same as torchvision's, less the md5 check of batches.meta.
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        with open(path, "rb") as infile:
            data = pickle.load(infile, encoding="latin1")
            self.classes = data[self.meta["key"]]
        self.class_to_idx = {_class: i for i, _class in enumerate(self.classes)}


def load_cifar10(spec: Cifar10Spec, data_dir: str | Path | None = None) -> Dataset:
    """The CIFAR-10 training images as (N, 3, 32, 32) float32, each channel normalised by MEAN and
    STD, with long labels 0-9; ``spec.samples`` > 0 keeps the first that many (the official files
    are already in random order).

    Raises:
        UserError: ``data_dir`` missing or without CIFAR-10, or no copy and no download.
    """
    if data_dir is not None:
        root = _explicit_root(user_data_dir(data_dir))
        if not _has_copy(root):
            _extract_archive_if_present(root)
        missing = _missing(root)
        if missing and (root / FOLDER).is_dir() and len(missing) < len(_NAMES):
            raise DataMissing(  # a copy in part: name the files, or the user looks for the wrong thing
                f"--data-dir {data_dir}: {FOLDER}/ lacks {', '.join(missing)} (extract {ARCHIVE} from "
                f"{HOME_PAGE} there again), or pass --synthetic for the labelled stand-in",
                dataset="CIFAR-10", why=f"{root / FOLDER} lacks {', '.join(missing)}",
            )
        if missing:
            raise DataMissing(
                f"--data-dir {data_dir} holds no CIFAR-10: it must contain {FOLDER}/ with data_batch_1 to "
                f"data_batch_5, test_batch and batches.meta (extract {ARCHIVE} from {HOME_PAGE} there), "
                "or pass --synthetic for the labelled stand-in",
                dataset="CIFAR-10", why=f"not in {root}",
            )
    else:
        root = cache_dir()
        if not _has_copy(root):
            _extract_archive_if_present(root)
        if not _has_copy(root):
            _download(root)
    return _read(root, spec.samples)


def _explicit_root(path: Path) -> Path:
    """Accept the folder that holds cifar-10-batches-py/ or that folder itself."""
    if path.name == FOLDER or (path / "data_batch_1").is_file():
        return path.parent
    return path


_NAMES = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
"""Every file of ``cifar-10-batches-py`` that torchvision reads."""


def _missing(root: Path) -> list[str]:
    """The files of ``root/cifar-10-batches-py`` that torchvision reads and that are not there."""
    return [name for name in _NAMES if not (root / FOLDER / name).is_file()]


def _has_copy(root: Path) -> bool:
    return not _missing(root)


def _extract_archive_if_present(root: Path) -> None:
    archive = root / ARCHIVE
    if not archive.is_file():
        return
    try:
        extract_tar(archive, root, keep=lambda name: name.split("/")[0] == FOLDER)
    except Exception as exc:  # a damaged archive or a read-only folder: say so in one line
        raise UserError(f"{archive}: cannot extract CIFAR-10 ({one_line(exc)})") from None


def _download(root: Path) -> None:
    download_archive(
        "CIFAR-10", ARCHIVE_URL, root / ARCHIVE, ARCHIVE_MD5, HOME_PAGE, lambda: _extract_archive_if_present(root)
    )


def _read(root: Path, samples: int) -> Dataset:
    try:
        data = _ExistingCIFAR10(str(root), train=True, download=False)
        pixels = data.data  # (N, 32, 32, 3) uint8, HWC
        labels = torch.as_tensor(data.targets, dtype=torch.long)
        if pixels.ndim != 4 or pixels.shape[1:] != (32, 32, 3) or len(labels) != len(pixels):
            raise ValueError(f"images of shape {pixels.shape[1:]} and {len(labels)} labels")
        if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) <= 9):
            # (out of range, a label fails the loss at the first batch that draws it, or never)
            raise ValueError(f"labels from {int(labels.min())} to {int(labels.max())}, where CIFAR-10 has 0 to 9")
    except Exception as exc:  # truncated or foreign pickles: the user's files, so one line, no traceback
        raise UserError(
            f"{root / FOLDER}: not readable as CIFAR-10 python batches ({one_line(exc)}); "
            f"replace it with a fresh copy from {ARCHIVE}, or pass --synthetic for the labelled stand-in"
        ) from None
    n = len(labels) if samples <= 0 else min(samples, len(labels))
    images = torch.empty(n, 3, 32, 32)
    # (pixel / 255 - mean) / std as one multiply and one subtract, in place, slice by slice: no
    # float temporaries the size of the data set
    scale = (1.0 / (255.0 * torch.tensor(STD))).view(1, 3, 1, 1)
    shift = (torch.tensor(MEAN) / torch.tensor(STD)).view(1, 3, 1, 1)
    chunk = 5000
    for start in range(0, n, chunk):
        end = min(start + chunk, n)
        block = images[start:end]
        block.copy_(torch.from_numpy(pixels[start:end]).permute(0, 3, 1, 2))  # (B, 32, 32, 3) -> (B, 3, 32, 32)
        block.mul_(scale).sub_(shift)
    return Dataset(
        images,
        labels[:n].clone(),
        Task("classify", (3, 32, 32), classes=10),
        f"CIFAR-10 ({n} images)",
        False,
    )
