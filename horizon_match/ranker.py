"""The learned part of matching: feature weights and destination profiles, saved as one file.

A `RankerModel` holds
- a small scoring network over the matcher's features (standardisation, one hidden ReLU layer
  or none), trained listwise on CORDIS outcomes: for an organisation's past projects, the
  topic of another project it won must rank first (`horizon_match.training`);
- destination profiles: for each year-free work-programme destination (`CL5/D3`) and programme
  part (`CL5`), the mean vector of the CORDIS projects funded there, under the embedding model
  they were computed with. A call's destination profile says what the projects it funds tend
  to be about, which its short title does not.

The file is a NumPy `.npz` (a few hundred KB) with a JSON `meta` entry saying what it was
trained on; `horizon-match evaluate train-ranker` re-creates it from a CORDIS folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from horizon_match.errors import ConfigError

ARTEFACT_DIR = Path(__file__).resolve().parent / "artefacts"
DEFAULT_RANKER_PATH = ARTEFACT_DIR / "matching_ranker.npz"
FORMAT_VERSION = 1


@dataclass
class DestinationProfiles:
    """Mean project vector per destination and per programme part, for one embedding model."""

    model: str
    destinations: list[str]
    destination_vectors: np.ndarray  # (n_destinations, dim), rows L2-normalised
    parts: list[str]
    part_vectors: np.ndarray  # (n_parts, dim)

    @classmethod
    def fit(
        cls,
        model: str,
        vectors: np.ndarray,
        destinations: list[str],
        parts: list[str],
        min_projects: int = 1,
    ) -> DestinationProfiles:
        """From project vectors and each project's destination and part ('' = unknown)."""
        dest_keys, dest_vecs = _group_means(vectors, destinations, min_projects)
        part_keys, part_vecs = _group_means(vectors, parts, min_projects)
        return cls(model, dest_keys, dest_vecs, part_keys, part_vecs)

    def index(self) -> tuple[dict[str, int], dict[str, int]]:
        return (
            {d: i for i, d in enumerate(self.destinations)},
            {p: i for i, p in enumerate(self.parts)},
        )


def _group_means(
    vectors: np.ndarray, labels: list[str], min_count: int
) -> tuple[list[str], np.ndarray]:
    keys = sorted({lab for lab in labels if lab})
    position = {k: i for i, k in enumerate(keys)}
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    sums = np.zeros((len(keys), dim), dtype=np.float64)
    counts = np.zeros(len(keys), dtype=np.int64)
    for vec, lab in zip(vectors, labels, strict=True):
        if lab:
            sums[position[lab]] += vec
            counts[position[lab]] += 1
    keep = counts >= min_count
    sums = sums[keep]
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return [k for k, ok in zip(keys, keep, strict=True) if ok], (sums / norms).astype(np.float32)


@dataclass
class RankerModel:
    """Feature standardisation + scoring network (+ optional destination profiles)."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    hidden_weights: np.ndarray | None  # (n_features, hidden) or None for a linear scorer
    hidden_bias: np.ndarray | None
    out_weights: np.ndarray  # (hidden or n_features,)
    out_bias: float = 0.0
    destinations: DestinationProfiles | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # features the model may read (an ablation trains on a subset); None = all
    used: np.ndarray | None = None
    _folded_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _full_cache: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of feature rows `x` (..., n_features) -> (...)."""
        shape = x.shape[:-1]
        # one 2-D product: NumPy runs a stacked (3-D) matmul as a loop, 15x slower here
        z = (x.reshape(-1, x.shape[-1]) - self.mean) / self.scale
        if self.used is not None:
            z = z * self.used
        if self.hidden_weights is not None:
            h = z @ self.hidden_weights
            h += self.hidden_bias
            np.maximum(h, 0.0, out=h)
            return (h @ self.out_weights + self.out_bias).reshape(shape)
        return (z @ self.out_weights + self.out_bias).reshape(shape)

    def score_planes(self, planes: np.ndarray) -> np.ndarray:
        """`score` of a feature-major block (n_features, ...) -> (...).

        The standardisation is folded into the first layer and features the model does not
        read get zero weights."""
        shape = planes.shape[1:]
        cols, weights, bias = self._folded()
        if len(planes) == len(self.features) and planes.flags.c_contiguous:
            # one product over the whole block as it lies in memory, with zero weights for
            # the planes the model does not read: cheaper than gathering a copy of the read
            # planes first (measured: 25 against 29-35 ms per chunk of 128 x 2,000 pairs).
            # Unread planes must be finite (0 * inf is nan); the matcher's are (similarities
            # of normalised vectors, shares, flags, or 0 where it skips computing them).
            x = planes.reshape(len(planes), -1)
            weights = self._full_weights()
        else:
            x = planes[cols].reshape(len(cols), -1)
        if self.hidden_weights is None:
            return (weights @ x + bias).reshape(shape)
        h = weights.T @ x  # (hidden, n)
        h += bias[:, None]
        np.maximum(h, 0.0, out=h)
        return (self.out_weights @ h + self.out_bias).reshape(shape)

    def _folded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._folded_cache is None:
            used = np.ones(len(self.features), bool) if self.used is None else self.used > 0
            cols = np.flatnonzero(used)
            inv = (1.0 / self.scale[cols]).astype(np.float32)
            if self.hidden_weights is not None and self.hidden_bias is not None:
                w = self.hidden_weights[cols] * inv[:, None]
                b = self.hidden_bias - (self.mean[cols] * inv) @ self.hidden_weights[cols]
            else:
                w = self.out_weights[cols] * inv
                b = np.float32(self.out_bias - (self.mean[cols] * inv) @ self.out_weights[cols])
            self._folded_cache = (cols, w.astype(np.float32), np.asarray(b, dtype=np.float32))
        return self._folded_cache

    def _full_weights(self) -> np.ndarray:
        """The folded first-layer weights with a zero row for every unread feature."""
        if self._full_cache is None:
            cols, weights, _ = self._folded()
            full = np.zeros((len(self.features), *weights.shape[1:]), dtype=np.float32)
            full[cols] = weights
            self._full_cache = full
        return self._full_cache

    def neutral(self, name: str) -> float:
        """The value that contributes like an average case (used for unavailable features)."""
        if name not in self.features:  # a model trained before the feature existed
            return 0.0
        return float(self.mean[self.features.index(name)])

    def spread(self, name: str) -> float:
        """The standard deviation of a feature in the training data (0 if it has none)."""
        if name not in self.features:
            return 0.0
        return float(self.scale[self.features.index(name)])

    # --- files ------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "mean": self.mean.astype(np.float32),
            "scale": self.scale.astype(np.float32),
            "out_weights": self.out_weights.astype(np.float32),
            "out_bias": np.array([self.out_bias], dtype=np.float32),
        }
        if self.hidden_weights is not None and self.hidden_bias is not None:
            arrays["hidden_weights"] = self.hidden_weights.astype(np.float32)
            arrays["hidden_bias"] = self.hidden_bias.astype(np.float32)
        meta = dict(self.meta, format=FORMAT_VERSION, features=list(self.features))
        if self.used is not None:
            meta["used"] = [f for f, u in zip(self.features, self.used, strict=True) if u]
        if self.destinations is not None:
            d = self.destinations
            # float16 halves the file; the profiles are compared by cosine, where it is exact
            # to about 3 decimals
            arrays["destination_vectors"] = d.destination_vectors.astype(np.float16)
            arrays["part_vectors"] = d.part_vectors.astype(np.float16)
            meta["destinations"] = {"model": d.model, "destinations": d.destinations, "parts": d.parts}
        arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RankerModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError as exc:
            raise ConfigError(
                f"the matching model {path} does not exist; re-create it with "
                "`horizon-match evaluate train-ranker ../shared/data/cordis_dev`"
            ) from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"the matching model {path} cannot be read ({exc}); re-create it "
                              "with `horizon-match evaluate train-ranker DIR`") from exc
        meta = json.loads(bytes(arrays["meta"]).decode())
        if meta.get("format") != FORMAT_VERSION:
            raise ConfigError(
                f"the matching model {path} has format {meta.get('format')}, this version reads "
                f"{FORMAT_VERSION}; re-create it with `horizon-match evaluate train-ranker DIR`"
            )
        destinations = None
        if "destinations" in meta:
            d = meta["destinations"]
            destinations = DestinationProfiles(
                model=d["model"],
                destinations=list(d["destinations"]),
                destination_vectors=arrays["destination_vectors"].astype(np.float32),
                parts=list(d["parts"]),
                part_vectors=arrays["part_vectors"].astype(np.float32),
            )
        return cls(
            features=list(meta["features"]),
            mean=arrays["mean"],
            scale=arrays["scale"],
            hidden_weights=arrays.get("hidden_weights"),
            hidden_bias=arrays.get("hidden_bias"),
            out_weights=arrays["out_weights"],
            out_bias=float(arrays["out_bias"][0]),
            destinations=destinations,
            meta={k: v for k, v in meta.items() if k not in ("features", "destinations", "used")},
            used=(
                np.array([f in set(meta["used"]) for f in meta["features"]], dtype=np.float32)
                if "used" in meta
                else None
            ),
        )


def load_ranker(path: Path | None = None) -> RankerModel | None:
    """The shipped (or given) model; None when the default file is absent."""
    if path is None:
        if not DEFAULT_RANKER_PATH.exists():
            return None
        path = DEFAULT_RANKER_PATH
    return RankerModel.load(path)
