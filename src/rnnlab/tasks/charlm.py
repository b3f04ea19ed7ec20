"""Character-level language modelling on any UTF-8 text file (default: tiny Shakespeare).

Streaming for truncated BPTT: the training split is cut into B parallel streams of
L = (n − 1) // B consecutive characters each; `chunk(k, B)` is the k-th window of T
characters of every stream, so chunk k + 1 continues chunk k in every column. A trainer
carries the final state of chunk k as h0 of chunk k + 1 and resets it at k = 0:

    h = None
    for X, Y, mask in task.stream(batch_size=32):      # chunk(0, 32), chunk(1, 32), …
        loss, grads, trace, h = ...                     # forward/BPTT from h, keep final h
        h = detach(h)

`chunk` is a pure function of (index, batch_size, split), so a resumed run needs only k.
Each stream's last L mod T characters are dropped. `batch(rng, B)` instead draws B
independent random windows (no state to carry), like every other task.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rnnlab._atomic import FileError, read_file, size_text
from rnnlab.arrays import Array
from rnnlab.checks import check_int, check_number
from rnnlab.tasks.base import (
    Batch,
    Task,
    check_outputs,
    check_rng,
    cross_entropy_steps,
    masked_mean,
    register,
)

# the largest text read: enwik8 and text8 (100 MB each) fit; a run's memory is ~30 bytes per
# character of it (the text, its code points and ids), which the run's budget counts
MAX_TEXT_BYTES = 256 << 20
UNKNOWN = "\ufffd"  # validation characters the training split never shows map here
SPLITS = ("train", "validation")
TRAIN_FRACTION_TENTHS = 9


class Forward(Protocol):
    def forward(self, X: Array, h0: Any) -> tuple[Array, Any]: ...


MAX_SAMPLE = 1_000_000  # characters `sample` may write


def read_text(path: str | Path | None) -> str:
    """The file's text, or the packaged tiny Shakespeare when `path` is None. The file must
    be a regular file (not /dev/zero, a FIFO or a folder) of at most MAX_TEXT_BYTES, checked
    before a byte of it is read."""
    if path is not None and not isinstance(path, str | Path):
        raise ValueError(f"path: got {type(path).__name__}; expected a str or Path, or none")
    if path is None:
        data = (resources.files("rnnlab.tasks") / "data" / "tinyshakespeare.txt").read_bytes()
    else:
        try:
            data = read_file(path, MAX_TEXT_BYTES)
        except FileError as e:
            raise ValueError(
                f"path: got {str(path)!r} ({e}); expected a readable UTF-8 text file of at "
                f"most {size_text(MAX_TEXT_BYTES)}"
            ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"path: got {str(path)!r}, not UTF-8 at byte {e.start}; expected a UTF-8 text file"
        ) from None
    if not text:
        raise ValueError(f"path: got {str(path)!r}, an empty file; expected a UTF-8 text file")
    return text


@register
class CharLMTask(Task):
    """Predict each next character. Token ids (T, B) in, class ids (T, B) out, mask all ones.

    The first 90 % of the text trains, the last 10 % validates (a contiguous split); the
    vocabulary is the training split's characters, sorted, plus UNKNOWN if the validation
    split holds others. input_size = output_size = vocabulary size.

    baseline: the unigram entropy of the training split, H = −Σ_c p_c ln p_c nats per
        character (`baseline_bits` in bits), the loss of predicting p whatever came before.
    metrics: cross_entropy (= loss, nats), bits_per_char = cross_entropy / ln 2,
        perplexity = exp(cross_entropy), accuracy (top-1).
    solved: bits_per_char <= solved_bpc. The literature has no solved state for language
        modelling; 2.5 bits is this library's default milestone, set your own.
    dependency_length: T − 1, the longest lag truncated BPTT over T steps can credit; text
        has no fixed lag.
    validation: `val_size` random windows of T characters from the validation split, each
        from a zero state; for a state-carrying pass, iterate `stream(B, "validation")`.
    """

    name = "charlm"
    accuracy_of = "characters"

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        T: int = 100,
        solved_bpc: float = 2.5,
        seed: int = 0,
        val_size: int = 256,
        dtype: str = "float32",
    ) -> None:
        super().__init__(seed=seed, val_size=val_size, dtype=dtype)
        text = read_text(path)
        n = len(text)
        n_train = n * TRAIN_FRACTION_TENTHS // 10
        if n - n_train < 2:
            raise ValueError(
                f"path: got {str(path)!r} with {n} characters; expected at least "
                f"11, so the 10 % validation split holds 2"
            )
        self.T = check_int("T", T, 1)
        if self.T > n - n_train - 1:
            raise ValueError(
                f"T: got {T!r}; expected 1 <= T <= {n - n_train - 1} for this "
                f"text (its validation split has {n - n_train} characters)"
            )
        if not isinstance(solved_bpc, int | float) or not solved_bpc > 0:
            raise ValueError(f"solved_bpc: got {solved_bpc!r}; expected a number > 0")
        self.solved_bpc = float(solved_bpc)
        self.path = None if path is None else str(path)
        self.params = {"path": self.path, "T": self.T, "solved_bpc": self.solved_bpc, **self.params}

        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # one code point each
        vocab = np.unique(codes[:n_train])
        if not np.isin(codes[n_train:], vocab).all():
            vocab = np.union1d(vocab, [ord(UNKNOWN)])
            codes = np.where(np.isin(codes, vocab), codes, ord(UNKNOWN))
        ids = np.searchsorted(vocab, codes)
        self.vocab = "".join(map(chr, vocab.tolist()))
        self._index = {ch: i for i, ch in enumerate(self.vocab)}
        self._splits = {"train": ids[:n_train], "validation": ids[n_train:]}

        self.input_size = self.output_size = len(self.vocab)
        self.input_ids = True
        self.loss = "cross_entropy"
        self.length = self.T
        self.dependency_length = self.T - 1
        p = np.bincount(self._splits["train"], minlength=len(self.vocab)) / n_train
        p = p[p > 0]
        self.baseline = float(-np.sum(p * np.log(p)))
        self.baseline_bits = self.baseline / math.log(2)

    @property
    def baselines(self) -> dict[str, float]:
        return super().baselines | {
            "bits_per_char": self.baseline_bits,
            "perplexity": math.exp(self.baseline),
        }

    # --- text <-> ids ---------------------------------------------------------------------

    def encode(self, text: str, argument: str = "text") -> Array:
        """Token ids (len(text),) of `text`; every character must be in the vocabulary."""
        for ch in text:
            if ch not in self._index:
                raise ValueError(
                    f"{argument}: got character {ch!r}; expected characters of "
                    f"the vocabulary ({len(self.vocab)} from the training split)"
                )
        return np.array([self._index[ch] for ch in text], dtype=np.int64)

    def decode(self, ids: Array) -> str:
        return "".join(self.vocab[i] for i in np.asarray(ids).ravel().tolist())

    # --- batches ----------------------------------------------------------------------------

    def _windows(self, data: Array, rng: np.random.Generator, B: int) -> Batch:
        starts = rng.integers(0, len(data) - self.T, B)
        idx = starts + np.arange(self.T)[:, None]  # (T, B)
        return Batch(data[idx], data[idx + 1], np.ones((self.T, B), dtype=self.dtype))

    def _generate(self, rng: np.random.Generator, batch_size: int) -> Batch:
        return self._windows(self._splits["train"], rng, batch_size)

    def _generate_validation(self, rng: np.random.Generator, batch_size: int) -> Batch:
        return self._windows(self._splits["validation"], rng, batch_size)

    def n_chunks(self, batch_size: int, split: str = "train") -> int:
        """Chunks per pass over `split` with `batch_size` streams."""
        data = self._split(split)
        B = check_int("batch_size", batch_size, 1)
        n = (len(data) - 1) // B // self.T
        if n == 0:
            most = (len(data) - 1) // self.T
            raise ValueError(
                f"batch_size: got {B}; expected 1 <= batch_size <= {most}, so "
                f"each {split} stream holds T = {self.T} steps"
            )
        return n

    def chunk(self, index: int, batch_size: int, split: str = "train") -> Batch:
        """Chunk `index` of `batch_size` streams: X[t, b] = s_b[index·T + t], Y one ahead."""
        n = self.n_chunks(batch_size, split)
        check_int("index", index, 0, n - 1, expected=f"an integer in [0, {n})")
        data = self._split(split)
        L = (len(data) - 1) // batch_size  # characters per stream
        idx = np.arange(batch_size) * L + int(index) * self.T + np.arange(self.T)[:, None]
        return Batch(data[idx], data[idx + 1], np.ones((self.T, batch_size), dtype=self.dtype))

    def stream(self, batch_size: int, split: str = "train", start: int = 0) -> Iterator[Batch]:
        """chunk(start), chunk(start + 1), … to the end of one pass over `split`."""
        n = self.n_chunks(batch_size, split)  # validate now, not at the first next()
        first = check_int("start", start, 0)
        return (self.chunk(index, batch_size, split) for index in range(first, n))

    def _split(self, split: str) -> Array:
        if split not in SPLITS:
            raise ValueError(f"split: got {split!r}; expected one of {', '.join(SPLITS)}")
        return self._splits[split]

    # --- evaluation ---------------------------------------------------------------------------

    def metrics(self, outputs: Array, Y: Array, mask: Array) -> dict[str, float]:
        o = check_outputs(outputs, mask, self.output_size)
        cross_entropy = masked_mean(cross_entropy_steps(o, Y, mask), mask)
        return {
            "loss": cross_entropy,
            "cross_entropy": cross_entropy,
            "bits_per_char": cross_entropy / math.log(2),
            "perplexity": math.exp(cross_entropy),
            "accuracy": masked_mean(o.argmax(axis=-1) == Y, mask),
        }

    def solved(self, metrics: dict[str, float]) -> bool:
        return metrics["bits_per_char"] <= self.solved_bpc

    def sample(
        self,
        model: Forward,
        rng: np.random.Generator,
        prime: str,
        temperature: float = 1.0,
        length: int = 500,
    ) -> str:
        """`length` characters continuing `prime` (not included), drawn one step at a time
        from softmax(o_t / temperature), carrying the model's state across steps;
        temperature 0 takes the most likely character (argmax) each step, without `rng`.

        model.forward(X_ids (T, 1), h0) -> (outputs (T, 1, K), final state); h0 None = zeros.
        """
        check_rng(rng)
        if not prime:
            raise ValueError("prime: got ''; expected at least one character")
        ids = self.encode(prime, "prime")
        check_number(
            "temperature",
            temperature,
            lambda v: v >= 0,
            "a number >= 0 (0: the most likely character each step)",
        )
        # one step per character: a million is hours already, and bounds the text's memory
        length = check_int("length", length, 0, MAX_SAMPLE)
        o, state = model.forward(ids[:, None], None)  # (P, 1, K)
        if o.shape[-1] != len(self.vocab):
            raise ValueError(
                f"model: got output_size {o.shape[-1]}; expected "
                f"{len(self.vocab)}, this text's vocabulary size"
            )
        out = np.empty(length, dtype=np.int64)
        for i in range(length):
            if temperature == 0:
                out[i] = o[-1, 0].argmax()
            else:
                z = o[-1, 0].astype(np.float64) / temperature  # (K,)
                p = np.exp(z - z.max())
                out[i] = rng.choice(len(p), p=p / p.sum())
            if i + 1 < length:  # the last draw needs no further step
                o, state = model.forward(out[i : i + 1, None], state)
        return self.decode(out)
