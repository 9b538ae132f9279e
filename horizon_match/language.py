"""Which language a text is written in: offline, deterministic, one of the official EU languages.

The detector is the naive-Bayes character n-gram model that ships inside the PyPI package
`py3langid` (no download at run time), restricted to the 24 official EU languages: a member
writing in another language still gets the closest EU language, which routes it to the
multilingual embedder just the same.

English gets a prior of `ENGLISH_PRIOR` (natural-log units added to its score). Texts in this
domain are mostly English, and short English titles or keyword lists ("Hydrogen cities",
"Microbiome, modulators, biofertilizers") otherwise come out as Dutch, Romanian or French. The
prior is kept small because the two mistakes do not cost the same: an English profile taken for
Italian is still matched well by the multilingual model, an Italian one taken for English is
matched by an English-only model. Only texts of a few words are affected; the trade-off on 2-3
word fragments is measured in BENCHMARKS.md ("Italian profiles (issue 4, part 4)").
"""

from __future__ import annotations

import threading
from typing import Any

from horizon_match.errors import ModelUnavailableError

EU_LANGUAGES: tuple[str, ...] = (
    "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr",
    "hu", "it", "lt", "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv",
)  # fmt: skip
# ISO 639-2 "undetermined": a text without a single letter
UNDETERMINED = "und"
ENGLISH_PRIOR = 4.0
DETECTOR_PACKAGE = "py3langid"
# the character n-grams of the first few thousand characters decide; more only costs time
_MAX_CHARS = 5000

_lock = threading.Lock()
_identifier: Any = None


def _load_identifier() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier
            except ImportError as exc:
                raise ModelUnavailableError(
                    f"the language detector is missing: install {DETECTOR_PACKAGE} with: "
                    f"pip install {DETECTOR_PACKAGE}"
                ) from exc
            identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
            identifier.set_languages(list(EU_LANGUAGES))
            _identifier = identifier
        return _identifier


def language_scores(text: str) -> dict[str, float]:
    """Log-score of every EU language for `text`, English prior included (higher is likelier)."""
    scores = {lang: float(score) for lang, score in _load_identifier().rank(text[:_MAX_CHARS])}
    scores["en"] = scores.get("en", 0.0) + ENGLISH_PRIOR
    return scores


def detect_language(text: str) -> str:
    """ISO 639-1 code of the language `text` is written in ("en", "it", "fr", ...).

    Always one of `EU_LANGUAGES`, or `UNDETERMINED` ("und") when the text has no letter.
    The same text always gives the same answer.
    """
    if not any(ch.isalpha() for ch in text[:_MAX_CHARS]):
        return UNDETERMINED
    scores = language_scores(text)
    # ties (never seen in practice) go to the earlier code, so the answer is stable
    return max(sorted(scores), key=lambda lang: scores[lang])
