"""Data: the real CIFAR-10 and IMDB loaders on tiny files in the real formats, offline behaviour, and
the synthetic generators.

No test opens a socket: an autouse fixture makes every connection attempt fail and records it, and the
tests that exercise the download path replace ``download.download_file``.
"""

from __future__ import annotations

import io
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from vgp_tui.data import cifar, download, imdb, loading, synthetic
from vgp_tui.data.dataset import Dataset
from vgp_tui.data.loading import load_dataset
from vgp_tui.data.specs import AddingSpec, Cifar10Spec, ImdbSpec, SpiralsSpec, Task
from vgp_tui.errors import UserError

# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to connect is refused and recorded; a test that tried fails at teardown."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert attempts == [], f"a test tried to reach the network: {attempts}"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data cache folder, empty and private to the test (never ~/.cache)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("VGP_TUI_DATA", str(folder))
    return folder


class Downloads:
    """Stands in for ``download.download_file``: records the URLs and fails or copies a local file."""

    def __init__(self, source: Path | None = None, error: Exception | None = None) -> None:
        self.urls: list[str] = []
        self.source = source
        self.error = error

    def __call__(self, url: str, dest: Path, *, timeout: float = download.DOWNLOAD_TIMEOUT_S) -> None:
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        assert self.source is not None
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, dest)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Downloads:
    """Downloads fail the way they do without a network."""
    fake = Downloads(error=urllib.error.URLError(OSError(-3, "Temporary failure in name resolution")))
    monkeypatch.setattr(download, "download_file", fake)
    return fake


# --------------------------------------------------------------------------------------------------
# CIFAR-10 in the official python format


class _Python2Pickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """Writes str and bytes as Python 2 byte strings (SHORT_BINSTRING/BINSTRING opcodes), as the
    official CIFAR-10 python files, pickled by Python 2, hold them: loaded with encoding="latin1"
    (as torchvision does) their keys are str, with encoding="bytes" they are bytes."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_python2_string(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_python2_string
    dispatch[bytes] = save_python2_string


def _dump_python2(obj: object, path: Path) -> None:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root: Path, per_batch: int = 2, seed: int = 1, label_at: dict[int, int] | None = None
                ) -> tuple[np.ndarray, list[int]]:
    """Write ``root/cifar-10-batches-py`` as the official archive has it, ``per_batch`` images per
    file; returns the training rows (N, 3072) uint8 and labels in file order. ``label_at``: labels set
    by hand, by position in data_batch_1."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows, labels = [], []
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for i, name in enumerate(names):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)  # 1024 R, 1024 G, 1024 B, rows of 32
        batch_labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        if i == 0:
            for at, label in (label_at or {}).items():
                batch_labels[at] = label
        batch_label = f"training batch {i + 1} of 5" if name != "test_batch" else "testing batch 1 of 1"
        _dump_python2(
            {
                "batch_label": batch_label,
                "labels": batch_labels,
                "data": data,
                "filenames": [f"image_{i}_{j}.png" for j in range(per_batch)],
            },
            folder / name,
        )
        if name != "test_batch":
            rows.append(data)
            labels.extend(batch_labels)
    meta = {"num_cases_per_batch": per_batch, "label_names": LABEL_NAMES, "num_vis": 3072}
    _dump_python2(meta, folder / "batches.meta")
    return np.concatenate(rows), labels


def _normalised(rows: np.ndarray) -> torch.Tensor:
    pixels = torch.from_numpy(rows.reshape(-1, 3, 32, 32).astype(np.float32)) / 255.0
    mean = torch.tensor(cifar.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cifar.STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def _tar_gz(source_root: Path, top: str, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source_root / top, arcname=top)
    return archive


class TestCifar10:
    """The real loader, through torchvision's CIFAR10, on tiny files in the official format."""

    def test_the_written_files_are_in_the_official_format(self, tmp_path: Path) -> None:
        write_cifar(tmp_path)
        with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
            as_bytes = pickle.load(f, encoding="bytes")  # how the CIFAR-10 page says to read them
        assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
        assert as_bytes[b"data"].dtype == np.uint8 and as_bytes[b"data"].shape == (2, 3072)

    def test_pixels_and_labels_round_trip(self, tmp_path: Path) -> None:
        rows, labels = write_cifar(tmp_path, per_batch=3)
        data = load_dataset("cifar10", Cifar10Spec(), data_dir=tmp_path)
        assert isinstance(data, Dataset)
        assert data.x.shape == (15, 3, 32, 32) and data.x.dtype == torch.float32
        assert data.y.dtype == torch.long and data.y.tolist() == labels
        # image 7 (the second of data_batch_3), green channel, row 5, column 9: in the file at
        # 1024 (past the red plane) + 5 * 32 + 9
        pixel = rows[7, 1024 + 5 * 32 + 9]
        expected = (pixel / 255.0 - cifar.MEAN[1]) / cifar.STD[1]
        assert data.x[7, 1, 5, 9].item() == pytest.approx(expected, abs=1e-5)
        torch.testing.assert_close(data.x, _normalised(rows))
        assert data.task == Task("classify", (3, 32, 32), classes=10)
        assert data.label == "CIFAR-10 (15 images)"
        assert data.synthetic is False

    def test_samples_keeps_the_first_images(self, tmp_path: Path) -> None:
        rows, labels = write_cifar(tmp_path, per_batch=2)
        data = load_dataset("cifar10", Cifar10Spec(samples=3), data_dir=tmp_path)
        assert data.y.tolist() == labels[:3]
        torch.testing.assert_close(data.x, _normalised(rows[:3]))
        assert data.label == "CIFAR-10 (3 images)"

    def test_data_dir_may_be_the_batches_folder_itself(self, tmp_path: Path) -> None:
        _, labels = write_cifar(tmp_path)
        data = load_dataset("cifar10", Cifar10Spec(), data_dir=tmp_path / "cifar-10-batches-py")
        assert data.y.tolist() == labels

    def test_the_cache_folder_is_used_without_data_dir(self, cache: Path, offline: Downloads) -> None:
        _, labels = write_cifar(cache)
        assert load_dataset("cifar10", Cifar10Spec()).y.tolist() == labels
        assert offline.urls == []

    def test_offline_without_a_copy_is_one_clear_line(self, cache: Path, offline: Downloads) -> None:
        with pytest.raises(UserError) as caught:
            load_dataset("cifar10", Cifar10Spec())
        message = str(caught.value)
        assert "\n" not in message
        assert f"no copy found in {cache}" in message
        assert "cifar-10-python.tar.gz" in message and "--data-dir" in message and "--synthetic" in message
        assert "Temporary failure in name resolution" in message
        assert offline.urls == [cifar.ARCHIVE_URL]

    def test_missing_data_dir(self, tmp_path: Path, offline: Downloads) -> None:
        missing = tmp_path / "nowhere"
        with pytest.raises(UserError, match=f"^--data-dir {missing} does not exist$"):
            load_dataset("cifar10", Cifar10Spec(), data_dir=missing)

    def test_data_dir_without_cifar_names_what_it_must_hold(self, tmp_path: Path, offline: Downloads) -> None:
        with pytest.raises(UserError) as caught:
            load_dataset("cifar10", Cifar10Spec(), data_dir=tmp_path)
        message = str(caught.value)
        assert message.startswith(f"--data-dir {tmp_path} holds no CIFAR-10")
        assert "cifar-10-batches-py/" in message and "data_batch_1" in message and "--synthetic" in message
        assert offline.urls == []  # nothing is downloaded into a folder the user named

    def test_an_incomplete_copy_is_not_a_copy_and_the_line_names_what_it_lacks(
            self, tmp_path: Path, offline: Downloads) -> None:
        write_cifar(tmp_path)
        (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
        (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
        with pytest.raises(UserError) as caught:
            load_dataset("cifar10", Cifar10Spec(), data_dir=tmp_path)
        assert str(caught.value).startswith(f"--data-dir {tmp_path}: cifar-10-batches-py/ lacks data_batch_4, "
                                            "batches.meta (extract cifar-10-python.tar.gz from "), str(caught.value)
        assert offline.urls == []

    def test_unreadable_batches_are_one_clear_line(self, tmp_path: Path) -> None:
        write_cifar(tmp_path)
        (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle")
        with pytest.raises(UserError, match="not readable as CIFAR-10 python batches") as caught:
            load_dataset("cifar10", Cifar10Spec(), data_dir=tmp_path)
        assert "\n" not in str(caught.value)

    @pytest.mark.parametrize("label", [-1, 10, 14])
    def test_labels_outside_0_to_9_are_one_clear_line(self, tmp_path: Path, label: int) -> None:
        # They failed the loss at the first batch that drew one (or, in a short run, never: exit 0).
        write_cifar(tmp_path, label_at={1: label})
        with pytest.raises(UserError, match=r"labels from -?\d+ to \d+, where CIFAR-10 has 0 to 9") as caught:
            load_dataset("cifar10", Cifar10Spec(), data_dir=tmp_path)
        assert "\n" not in str(caught.value)

    def test_an_archive_in_data_dir_is_extracted(self, tmp_path: Path) -> None:
        source = tmp_path / "source"
        _, labels = write_cifar(source)
        target = tmp_path / "target"
        target.mkdir()
        _tar_gz(source, "cifar-10-batches-py", target / "cifar-10-python.tar.gz")
        assert load_dataset("cifar10", Cifar10Spec(), data_dir=target).y.tolist() == labels

    def test_a_download_is_checked_extracted_and_removed(
        self, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        source = tmp_path / "source"
        _, labels = write_cifar(source)
        archive = _tar_gz(source, "cifar-10-batches-py", tmp_path / "served.tar.gz")
        fake = Downloads(source=archive)
        monkeypatch.setattr(download, "download_file", fake)
        monkeypatch.setattr(cifar, "ARCHIVE_MD5", download.md5_of(archive))
        assert load_dataset("cifar10", Cifar10Spec()).y.tolist() == labels
        assert fake.urls == [cifar.ARCHIVE_URL]
        assert not (cache / "cifar-10-python.tar.gz").exists()
        assert load_dataset("cifar10", Cifar10Spec()).y.tolist() == labels  # now from the cache
        assert len(fake.urls) == 1

    def test_a_corrupted_download_is_refused(
        self, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        source = tmp_path / "source"
        write_cifar(source)
        fake = Downloads(source=_tar_gz(source, "cifar-10-batches-py", tmp_path / "served.tar.gz"))
        monkeypatch.setattr(download, "download_file", fake)
        with pytest.raises(UserError, match="corrupted"):
            load_dataset("cifar10", Cifar10Spec())  # its md5 is not the official archive's
        assert not (cache / "cifar-10-python.tar.gz").exists()
        assert not (cache / "cifar-10-batches-py").exists()


# --------------------------------------------------------------------------------------------------
# IMDB in the aclImdb folder layout

REVIEWS = {
    ("pos", "0_9.txt"): "A great movie!<br /><br />Great acting, great story.",
    ("pos", "1_8.txt"): "I loved it. Loved it, really.",
    ("neg", "0_2.txt"): "Bad. Really bad movie<br />don't watch it",
    ("neg", "1_1.txt"): "Boring and bad",
}


def write_imdb(root: Path, reviews: dict[tuple[str, str], str] = REVIEWS) -> Path:
    """Write ``root/aclImdb/train/{pos,neg}/<id>_<rating>.txt``, plus parts a loader must ignore."""
    folder = root / "aclImdb"
    for (polarity, name), text in reviews.items():
        path = folder / "train" / polarity / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "train" / "unsup").mkdir(parents=True, exist_ok=True)
    (folder / "train" / "unsup" / "0_0.txt").write_text("unlabelled great great great", encoding="utf-8")
    (folder / "test" / "pos").mkdir(parents=True, exist_ok=True)
    (folder / "test" / "pos" / "0_10.txt").write_text("a test review, never read", encoding="utf-8")
    (folder / "imdb.vocab").write_text("the\nand\n", encoding="utf-8")
    return folder


class TestImdb:
    """The real loader on a tiny aclImdb tree."""

    def test_tokenize(self) -> None:
        assert imdb.tokenize("Don't<br />STOP, it's 10/10!<br/>Café_au_lait") == [
            "don't", "stop", "it's", "10", "10", "café", "au", "lait"
        ]  # fmt: skip

    def test_vocab_is_by_frequency_then_alphabetical(self) -> None:
        documents = [["b", "a", "c"], ["c", "a", "d"], ["c"]]
        assert imdb.build_vocab(documents, 5) == {"c": 2, "a": 3, "b": 4}

    def test_tokens_vocab_padding_and_labels(self, tmp_path: Path) -> None:
        write_imdb(tmp_path)
        data = load_dataset("imdb", ImdbSpec(samples=0, length=6, vocab=6), data_dir=tmp_path)
        # counts: great 3, bad 3, it 3, loved 2, really 2, movie 2, then 1 each; ties alphabetical
        vocab = {"bad": 2, "great": 3, "it": 4, "loved": 5}
        expected = {
            (1, 3, 1, 3, 1, 3): 1,  # a great movie great acting great (story cut off)
            (1, 5, 4, 5, 4, 1): 1,  # i loved it loved it really
            (2, 1, 2, 1, 1, 1): 0,  # bad really bad movie don't watch (it cut off)
            (1, 1, 2, 0, 0, 0): 0,  # boring and bad, then padding
        }
        assert data.x.dtype == torch.long and data.x.shape == (4, 6)
        rows = {tuple(row): int(label) for row, label in zip(data.x.tolist(), data.y.tolist(), strict=True)}
        assert rows == expected
        assert data.task == Task("classify", (6,), classes=2, vocab=len(vocab) + 2)
        assert data.label == "IMDB aclImdb (4 reviews)"
        assert data.synthetic is False

    def test_a_large_vocabulary_is_cut_to_the_words_there_are(self, tmp_path: Path) -> None:
        write_imdb(tmp_path)
        data = load_dataset("imdb", ImdbSpec(length=8, vocab=10_000), data_dir=tmp_path)
        words = {w for text in REVIEWS.values() for w in imdb.tokenize(text)}
        assert data.task.vocab == len(words) + 2
        assert int(data.x.max()) == len(words) + 1
        assert (data.x == imdb.UNKNOWN).sum() == 0  # every word is in the vocabulary

    def test_data_dir_may_be_acl_imdb_itself(self, tmp_path: Path) -> None:
        folder = write_imdb(tmp_path)
        data = load_dataset("imdb", ImdbSpec(length=4, vocab=20), data_dir=folder)
        assert sorted(data.y.tolist()) == [0, 0, 1, 1]

    def test_shuffle_and_samples_follow_the_seed(self, tmp_path: Path) -> None:
        reviews = {("pos" if i % 2 else "neg", f"{i}_5.txt"): f"review number{i} word" for i in range(20)}
        write_imdb(tmp_path, reviews)
        spec = ImdbSpec(samples=0, length=3, vocab=100)
        first = load_dataset("imdb", spec, data_dir=tmp_path, seed=3)
        again = load_dataset("imdb", spec, data_dir=tmp_path, seed=3)
        other = load_dataset("imdb", spec, data_dir=tmp_path, seed=4)
        assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
        assert not torch.equal(first.y, other.y) or not torch.equal(first.x, other.x)
        kept = load_dataset("imdb", ImdbSpec(samples=5, length=3, vocab=100), data_dir=tmp_path, seed=3)
        assert kept.x.shape == (5, 3) and kept.label == "IMDB aclImdb (5 reviews)"

    def test_offline_without_a_copy_is_one_clear_line(self, cache: Path, offline: Downloads) -> None:
        with pytest.raises(UserError) as caught:
            load_dataset("imdb", ImdbSpec())
        message = str(caught.value)
        assert "\n" not in message
        assert f"no copy found in {cache}" in message
        assert "aclImdb_v1.tar.gz" in message and "--data-dir" in message and "--synthetic" in message
        assert offline.urls == [imdb.ARCHIVE_URL]

    def test_missing_data_dir(self, tmp_path: Path) -> None:
        with pytest.raises(UserError, match="^--data-dir .*nowhere does not exist$"):
            load_dataset("imdb", ImdbSpec(), data_dir=tmp_path / "nowhere")

    def test_data_dir_without_imdb_names_what_it_must_hold(self, tmp_path: Path, offline: Downloads) -> None:
        (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)  # no reviews
        with pytest.raises(UserError) as caught:
            load_dataset("imdb", ImdbSpec(), data_dir=tmp_path)
        message = str(caught.value)
        assert message.startswith(f"--data-dir {tmp_path} holds no IMDB")
        assert "aclImdb/train/pos/*.txt" in message and "--synthetic" in message
        assert offline.urls == []

    def test_a_download_extracts_only_the_labelled_training_reviews(
        self, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write_imdb(tmp_path / "source")
        archive = _tar_gz(tmp_path / "source", "aclImdb", tmp_path / "served.tar.gz")
        fake = Downloads(source=archive)
        monkeypatch.setattr(download, "download_file", fake)
        monkeypatch.setattr(imdb, "ARCHIVE_MD5", download.md5_of(archive))
        data = load_dataset("imdb", ImdbSpec(length=5, vocab=50))
        assert sorted(data.y.tolist()) == [0, 0, 1, 1]
        assert fake.urls == [imdb.ARCHIVE_URL]
        assert (cache / "aclImdb" / "imdb.vocab").is_file()
        assert not (cache / "aclImdb" / "train" / "unsup").exists()
        assert not (cache / "aclImdb" / "test").exists()
        assert not (cache / "aclImdb_v1.tar.gz").exists()

    def test_an_archive_that_escapes_its_folder_is_refused(self, tmp_path: Path) -> None:
        target = tmp_path / "target"
        target.mkdir()
        with tarfile.open(target / "aclImdb_v1.tar.gz", "w:gz") as tar:
            payload = b"pwned"
            member = tarfile.TarInfo("aclImdb/train/pos/../../../../escaped.txt")
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        with pytest.raises(UserError, match="cannot extract IMDB"):
            load_dataset("imdb", ImdbSpec(), data_dir=target)
        assert not (tmp_path / "escaped.txt").exists()


def test_download_file_sets_a_timeout_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []

    def urlopen(request: object, timeout: float) -> object:
        seen.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    with pytest.raises(OSError):
        download.download_file("https://example.invalid/x.tar.gz", tmp_path / "x.tar.gz")
    assert seen == [download.DOWNLOAD_TIMEOUT_S]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# synthetic generators


class TestSynthetic:
    """Shapes, determinism, and the rule that decides each label."""

    def test_spirals(self) -> None:
        before = torch.random.get_rng_state()
        data = synthetic.spirals(SpiralsSpec(samples=300, classes=3, noise=0.1), seed=0)
        assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is left alone
        assert data.x.shape == (300, 2) and data.x.dtype == torch.float32
        assert data.y.dtype == torch.long and torch.bincount(data.y).tolist() == [100, 100, 100]
        torch.testing.assert_close(data.x.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
        torch.testing.assert_close(data.x.std(0), torch.ones(2), atol=1e-5, rtol=0)
        assert data.task == Task("classify", (2,), classes=3)
        assert data.label == "spirals (generated)" and data.synthetic

    def test_spiral_arms_are_interleaved_not_linearly_separable(self) -> None:
        data = synthetic.spirals(SpiralsSpec(samples=3000, classes=3, noise=0.0), seed=0)
        # the best linear classifier, by least squares on one-hot targets, stays far from perfect
        features = torch.cat([data.x, torch.ones(len(data), 1)], dim=1).double()
        onehot = torch.nn.functional.one_hot(data.y, 3).double()
        weights = torch.linalg.lstsq(features, onehot).solution
        accuracy = ((features @ weights).argmax(1) == data.y).double().mean().item()
        assert accuracy < 0.7
        # while neighbours agree: the arms are learnable
        distances = torch.cdist(data.x[:500], data.x)
        distances[torch.arange(500), torch.arange(500)] = float("inf")
        nearest = distances.argmin(1)
        assert (data.y[nearest] == data.y[:500]).double().mean().item() > 0.95

    def test_adding_problem(self) -> None:
        data = synthetic.adding_problem(AddingSpec(samples=500, length=30), seed=0)
        assert data.x.shape == (500, 30, 2) and data.y.shape == (500,) and data.y.dtype == torch.float32
        values, marks = data.x[..., 0], data.x[..., 1]
        assert ((values >= 0) & (values <= 1)).all()
        assert set(marks.unique().tolist()) == {0.0, 1.0}
        assert (marks.sum(1) == 2).all()
        assert (marks[:, :15].sum(1) == 1).all() and (marks[:, 15:].sum(1) == 1).all()
        torch.testing.assert_close(data.y, (values * marks).sum(1))
        assert data.task == Task("regress", (30, 2))
        assert data.label == "adding problem (generated)" and data.synthetic

    def test_adding_problem_shortest_sequence(self) -> None:
        data = synthetic.adding_problem(AddingSpec(samples=10, length=2), seed=0)
        assert (data.x[..., 1] == 1).all()

    def test_long_range_sentiment_label_is_the_one_deciding_word(self) -> None:
        spec = ImdbSpec(samples=2000, length=100, vocab=10_000)
        data = synthetic.long_range_sentiment(spec, seed=0)
        tokens = data.x
        assert tokens.shape == (2000, 100) and tokens.dtype == torch.long
        assert data.task == Task("classify", (100,), classes=2, vocab=synthetic.SENTIMENT_MAX_VOCAB)
        assert tokens.min() >= synthetic.GOOD and tokens.max() < data.task.vocab  # no pad, no unknown
        deciding = (tokens == synthetic.GOOD) | (tokens == synthetic.BAD)
        assert (deciding.sum(1) == 1).all()  # exactly one sentiment word per review
        position = deciding.int().argmax(1)
        assert (position >= 40).all() and (position < 60).all()  # at least 40 steps from either end
        word = tokens[torch.arange(2000), position]
        assert torch.equal(data.y, (word == synthetic.GOOD).long())  # the rule decides every label
        assert 0.4 < data.y.float().mean().item() < 0.6
        # the filler says nothing: its distribution is the same for both labels
        filler_pos = tokens[data.y == 1][~deciding[data.y == 1]].float().mean()
        filler_neg = tokens[data.y == 0][~deciding[data.y == 0]].float().mean()
        assert abs(filler_pos - filler_neg).item() < 5
        assert data.label == "synthetic long-range sentiment (stand-in for IMDB)" and data.synthetic

    def test_long_range_sentiment_defaults(self) -> None:
        data = synthetic.long_range_sentiment(ImdbSpec(samples=0, length=20, vocab=50), seed=0)
        assert len(data) == synthetic.SENTIMENT_DEFAULT_SAMPLES and data.task.vocab == 50

    def test_cifar_standin(self) -> None:
        data = synthetic.cifar_standin(Cifar10Spec(samples=1000), seed=0)
        assert data.x.shape == (1000, 3, 32, 32) and data.x.dtype == torch.float32
        assert torch.bincount(data.y).tolist() == [100] * 10
        assert data.task == Task("classify", (3, 32, 32), classes=10)
        assert data.label == "synthetic stand-in for CIFAR-10" and data.synthetic
        torch.testing.assert_close(data.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
        # the labels carry signal: a nearest class-mean classifier, fit on half, beats chance (10%)
        # on the other half by far, yet is far from perfect
        flat = data.x.flatten(1)
        means = torch.stack([flat[:500][data.y[:500] == c].mean(0) for c in range(10)])
        predicted = torch.cdist(flat[500:], means).argmin(1)
        accuracy = (predicted == data.y[500:]).float().mean().item()
        assert 0.3 < accuracy < 0.95

    def test_cifar_standin_default_size(self) -> None:
        spec = Cifar10Spec(samples=0)
        assert synthetic.CIFAR_STANDIN_DEFAULT_SAMPLES == 5000
        data = load_dataset("cifar10", spec, synthetic=True)
        assert len(data) == 5000

    @pytest.mark.parametrize(
        ("make", "spec"),
        [
            (synthetic.spirals, SpiralsSpec(samples=64)),
            (synthetic.adding_problem, AddingSpec(samples=64, length=10)),
            (synthetic.long_range_sentiment, ImdbSpec(samples=64, length=20, vocab=50)),
            (synthetic.cifar_standin, Cifar10Spec(samples=20)),
        ],
    )
    def test_same_seed_same_data_other_seed_other_data(self, make, spec) -> None:  # type: ignore[no-untyped-def]
        first, again, other = make(spec, 1), make(spec, 1), make(spec, 2)
        assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
        assert not torch.equal(first.x, other.x)


# --------------------------------------------------------------------------------------------------
# load_dataset and the package


class TestLoadDataset:
    def test_kinds_and_the_synthetic_switch(self, offline: Downloads) -> None:
        assert load_dataset("spirals", SpiralsSpec(samples=10)).label == "spirals (generated)"
        assert load_dataset("adding", AddingSpec(samples=10, length=4)).task.kind == "regress"
        stand_in = load_dataset("imdb", ImdbSpec(samples=10, length=20), synthetic=True, seed=5)
        assert stand_in.label == "synthetic long-range sentiment (stand-in for IMDB)"
        assert torch.equal(stand_in.x, synthetic.long_range_sentiment(ImdbSpec(samples=10, length=20), 5).x)
        stand_in = load_dataset("cifar10", Cifar10Spec(samples=10), synthetic=True)
        assert stand_in.label == "synthetic stand-in for CIFAR-10"
        assert offline.urls == []  # --synthetic never looks for the real data

    def test_spec_defaults(self) -> None:
        assert len(load_dataset("spirals")) == SpiralsSpec().samples

    def test_unknown_kind(self) -> None:
        with pytest.raises(UserError, match="unknown data kind 'spiral'; known: .*did you mean 'spirals'"):
            load_dataset("spiral", None)

    def test_wrong_spec_type_is_a_bug(self) -> None:
        with pytest.raises(TypeError):
            load_dataset("spirals", AddingSpec())

    def test_dataset_checks_its_shapes(self) -> None:
        with pytest.raises(ValueError):
            Dataset(torch.zeros(3, 2), torch.zeros(4), Task("classify", (2,), 2), "x", True)
        with pytest.raises(ValueError):
            Dataset(torch.zeros(3, 2), torch.zeros(3), Task("classify", (3,), 2), "x", True)

    def test_cache_dir(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("VGP_TUI_DATA", str(tmp_path / "d"))
        assert download.cache_dir() == tmp_path / "d"
        monkeypatch.delenv("VGP_TUI_DATA")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
        assert download.cache_dir() == tmp_path / "x" / "vgp-tui"


def test_package_import_is_torch_free() -> None:
    # (that no data module imports textual is checked for all headless modules in test_import_hygiene)
    code = (
        "import sys, vgp_tui.data\n"
        "assert 'torch' not in sys.modules, 'importing vgp_tui.data imported torch'\n"
        "assert 'DATA_SPECS' in dir(vgp_tui.data) and 'load_dataset' in vgp_tui.data.__all__\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_package_exports_the_loader_lazily() -> None:
    import vgp_tui.data as package

    assert package.load_dataset is loading.load_dataset and package.Dataset is Dataset
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_a_data_set_smaller_than_a_batch_says_what_the_user_can_change(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from vgp_tui.engine.session import Session
    from vgp_tui.scenario import load_preset

    monkeypatch.setenv("VGP_TUI_PRESETS", str(tmp_path / "mine"))
    write_cifar(tmp_path / "data", per_batch=4)  # 20 training images, a batch is 64
    builtin = Session(load_preset("resnet-cifar10"), device="cpu", data_dir=str(tmp_path / "data"))
    with pytest.raises(UserError) as caught:
        builtin.load_data()
    # A built-in preset is not the user's to edit: the line says what is.
    assert "batch_size 64 is larger than the data (20 examples in " in str(caught.value)
    assert str(caught.value).endswith(f"give it a data set of at least 64 examples, or copy the preset to "
                                      f"{tmp_path / 'mine' / 'resnet-cifar10.toml'} and lower its batch_size")
    own = tmp_path / "own.toml"
    own.write_text((Path(__file__).parent.parent / "presets" / "resnet-cifar10.toml").read_text())
    users = Session(load_preset(str(own)), device="cpu", data_dir=str(tmp_path / "data"))
    with pytest.raises(UserError) as caught:
        users.load_data()
    assert str(caught.value).startswith(f"{own}: [train] batch_size 64 is larger than the data (20 examples")
    assert str(caught.value).endswith("; lower it to at most 20")
