"""IMDB movie reviews (Maas et al. 2011) from the ``aclImdb`` folder layout, as fixed-length token ids.

The training split is read from ``aclImdb/train/pos/*.txt`` (label 1) and ``aclImdb/train/neg/*.txt``
(label 0); files are named ``<id>_<rating>.txt``, one review each. Where the copy is looked for:

- ``--data-dir DIR``: DIR may be the folder that holds ``aclImdb/`` or ``aclImdb/`` itself, or hold the
  official ``aclImdb_v1.tar.gz``, which is extracted there. Nothing is downloaded into a folder the user
  named (the same rule as CIFAR-10).
- otherwise the cache folder (:func:`~vgp_tui.data.download.cache_dir`): where the copy is missing, the
  Stanford archive is downloaded once with a socket timeout, its md5 checked and only the labelled
  training reviews extracted; offline the user is told how to get it or to pass ``--synthetic``.

Encoding: lowercase, ``<br />`` removed, words by a regular expression; a vocabulary of the
``spec.vocab - 2`` most frequent words (ties in alphabetical order) after 0 = pad and 1 = unknown. Each
review keeps its FIRST ``spec.length`` tokens and is padded with 0 at the end. Keeping the start (rather
than the end, as some Keras examples do) keeps the opening of the review, and padding at the end
leaves the words where a reader meets them; a forward recurrent net then has to carry the words across
the padding to its final state, which is the lesson of the preset.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from vgp_tui.data.download import cache_dir, download_archive, extract_tar, one_line, user_data_dir
from vgp_tui.data.dataset import Dataset
from vgp_tui.data.specs import ImdbSpec, Task
from vgp_tui.errors import DataMissing, UserError

FOLDER = "aclImdb"
ARCHIVE = "aclImdb_v1.tar.gz"
ARCHIVE_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
HOME_PAGE = "https://ai.stanford.edu/~amaas/data/sentiment/"
PAD, UNKNOWN = 0, 1

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
"""Runs of letters and digits, with inner apostrophes kept (``don't``, ``director's``)."""


def tokenize(text: str) -> list[str]:
    """Lowercase words of a review, with its ``<br />`` line breaks removed."""
    return _WORD.findall(text.lower().replace("<br />", " ").replace("<br/>", " "))


def build_vocab(documents: Iterable[Sequence[str]], size: int) -> dict[str, int]:
    """Word -> id for the ``size - 2`` most frequent words, ids from 2 in order of frequency (ties
    alphabetical, so the vocabulary does not depend on the order of the files); 0 and 1 stay pad and
    unknown."""
    counts: Counter[str] = Counter()
    for words in documents:
        counts.update(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: max(size - 2, 0)]
    return {word: i + 2 for i, (word, _) in enumerate(ranked)}


def encode(words: Sequence[str], vocab: dict[str, int], length: int) -> list[int]:
    """Exactly ``length`` ids: the first ``length`` words (unknown ones as 1), then 0s."""
    ids = [vocab.get(word, UNKNOWN) for word in words[:length]]
    return ids + [PAD] * (length - len(ids))


def load_imdb(spec: ImdbSpec, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """The IMDB training reviews as (N, spec.length) long ids and long labels (pos 1, neg 0), shuffled
    by ``seed``; ``spec.samples`` > 0 keeps that many of the shuffled reviews (and builds the
    vocabulary from them alone).

    Raises:
        UserError: ``data_dir`` missing or without aclImdb, or no copy and no download.
    """
    folder = _find_copy(data_dir)
    train = folder / "train"
    files = [(p, 1) for p in sorted((train / "pos").glob("*.txt"))]
    files += [(p, 0) for p in sorted((train / "neg").glob("*.txt"))]
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    if spec.samples > 0:
        order = order[: spec.samples]
    try:
        documents = [tokenize(files[i][0].read_text(encoding="utf-8", errors="replace")) for i in order]
    except OSError as exc:
        raise UserError(f"{folder}: cannot read a review ({one_line(exc)})") from None
    vocab = build_vocab(documents, spec.vocab)
    ids = np.zeros((len(order), spec.length), dtype=np.int64)
    for row, words in enumerate(documents):
        ids[row] = encode(words, vocab, spec.length)
    labels = torch.tensor([files[i][1] for i in order], dtype=torch.long)
    size = len(vocab) + 2
    return Dataset(
        torch.from_numpy(ids),
        labels,
        Task("classify", (spec.length,), classes=2, vocab=size),
        f"IMDB aclImdb ({len(order)} reviews)",
        False,
    )


def _has_copy(folder: Path) -> bool:
    """True where ``folder`` (an aclImdb) holds at least one positive and one negative training review."""
    train = folder / "train"
    return any((train / "pos").glob("*.txt")) and any((train / "neg").glob("*.txt"))


def _find_copy(data_dir: str | Path | None) -> Path:
    """The aclImdb folder to read, extracting or downloading the archive where that is allowed."""
    if data_dir is not None:
        given = user_data_dir(data_dir)
        for folder in (given / FOLDER, given):
            if _has_copy(folder):
                return folder
        _extract_archive_if_present(given)
        if _has_copy(given / FOLDER):
            return given / FOLDER
        raise DataMissing(
            f"--data-dir {data_dir} holds no IMDB: it must contain {FOLDER}/train/pos/*.txt and "
            f"{FOLDER}/train/neg/*.txt (extract {ARCHIVE} from {HOME_PAGE} there), "
            "or pass --synthetic for the labelled stand-in",
            dataset="IMDB", why=f"not in {given}",
        )
    root = cache_dir()
    if not _has_copy(root / FOLDER):
        _extract_archive_if_present(root)
    if not _has_copy(root / FOLDER):
        _download(root)
    return root / FOLDER


def _wanted(name: str) -> bool:
    """Archive members worth extracting: the labelled training reviews and the top-level notes, not
    the 50 000 unlabelled and 25 000 test reviews this program never reads."""
    parts = name.removeprefix("./").split("/")
    if parts[0] != FOLDER:
        return False
    if len(parts) <= 2:
        return parts[-1] != "test"
    return parts[1] == "train" and parts[2] in ("pos", "neg")


def _extract_archive_if_present(root: Path) -> None:
    archive = root / ARCHIVE
    if not archive.is_file():
        return
    try:
        extract_tar(archive, root, keep=_wanted)
    except Exception as exc:  # a damaged archive or a read-only folder: say so in one line
        raise UserError(f"{archive}: cannot extract IMDB ({one_line(exc)})") from None


def _download(root: Path) -> None:
    download_archive(
        "IMDB", ARCHIVE_URL, root / ARCHIVE, ARCHIVE_MD5, HOME_PAGE, lambda: _extract_archive_if_present(root)
    )
