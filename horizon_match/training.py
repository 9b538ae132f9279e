"""Learning the ranker from outcomes: which topic did an organisation win, given its history.

Each training example is one organisation and one project it won: the organisation's other
projects form its profile, the project's topic must rank first among the topics of that call
year. The matcher computes the features exactly as in production (`Matcher.features`); a small
network (one hidden layer, or linear) is fitted with a listwise softmax loss over the true
topic and a sample of the others. Training runs on CPU in a minute or two and is deterministic
(fixed seeds, single-threaded reductions aside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.ranker import DestinationProfiles, RankerModel
from horizon_match.scoring import FEATURES, Matcher, Prepared


@dataclass
class TrainingOptions:
    hidden: int = 32  # 0 = a linear scorer
    epochs: int = 12
    negatives: int = 127  # sampled competitors per example
    batch: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    # train on these features only (an ablation); None = every feature
    features: tuple[str, ...] | None = None


@dataclass
class TrainingSet:
    """Feature rows of (true topic, sampled competitors) per example; the true one first."""

    rows: list[np.ndarray] = field(default_factory=list)

    def add(self, features: np.ndarray, target: int, rng: np.random.Generator, negatives: int) -> None:
        n_calls = features.shape[0]
        others = np.delete(np.arange(n_calls), target)
        if len(others) > negatives:
            others = rng.choice(others, negatives, replace=False)
        self.rows.append(features[np.concatenate([[target], others])].astype(np.float32))

    def __len__(self) -> int:
        return len(self.rows)


def collect(
    matcher: Matcher,
    prepared: Prepared,
    targets: Sequence[int],
    into: TrainingSet,
    rng: np.random.Generator,
    negatives: int,
    progress: Progress = NULL_PROGRESS,
) -> None:
    """Add the examples of `prepared` (profile i won call `targets[i]`; -1 = skip)."""
    for idx in matcher.chunks(prepared):
        feats, _ = matcher.features(prepared, idx)
        for r, i in enumerate(idx):
            if targets[i] >= 0:
                into.add(feats[r], int(targets[i]), rng, negatives)
        progress.advance(len(idx))


def fit_ranker(
    data: TrainingSet,
    options: TrainingOptions,
    destinations: DestinationProfiles | None,
    meta: dict[str, Any],
) -> RankerModel:
    """Fit the scoring network on `data` (each block's first row is the true topic)."""
    import torch

    if not data.rows:
        raise ValueError("no training examples")
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    width = min(len(r) for r in data.rows)
    # equal-sized blocks make one tensor; examples with fewer candidates keep their first rows
    x = np.stack([r[:width] for r in data.rows])  # (n, width, F)
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(0)
    scale = flat.std(0)
    scale[scale < 1e-6] = 1.0
    used = None
    if options.features is not None:
        unknown = set(options.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}")
        used = np.array([f in options.features for f in FEATURES], dtype=np.float32)
    z = (x - mean) / scale
    if used is not None:
        z = z * used
    xt = torch.from_numpy(z.astype(np.float32))
    n_features = x.shape[-1]
    if options.hidden:
        net = torch.nn.Sequential(
            torch.nn.Linear(n_features, options.hidden), torch.nn.ReLU(), torch.nn.Linear(options.hidden, 1)
        )
    else:
        net = torch.nn.Sequential(torch.nn.Linear(n_features, 1))
    opt = torch.optim.Adam(net.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    target = torch.zeros(options.batch, dtype=torch.long)
    for _ in range(options.epochs):
        order = rng.permutation(len(xt))
        for start in range(0, len(order), options.batch):
            batch = xt[order[start : start + options.batch]]
            scores = net(batch).squeeze(-1)
            loss = torch.nn.functional.cross_entropy(scores, target[: len(batch)])
            opt.zero_grad()
            loss.backward()
            opt.step()
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    if options.hidden:
        hidden_w = layers[0].weight.detach().numpy().T.copy()
        hidden_b = layers[0].bias.detach().numpy().copy()
        out_w = layers[1].weight.detach().numpy()[0].copy()
        out_b = float(layers[1].bias.detach().numpy()[0])
    else:
        hidden_w = hidden_b = None
        out_w = layers[0].weight.detach().numpy()[0].copy()
        out_b = float(layers[0].bias.detach().numpy()[0])
    return RankerModel(
        features=list(FEATURES),
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        hidden_weights=hidden_w,
        hidden_bias=hidden_b,
        out_weights=out_w,
        out_bias=out_b,
        destinations=destinations,
        meta=dict(meta, hidden=options.hidden, epochs=options.epochs, negatives=options.negatives,
                  examples=len(data.rows)),
        used=used,
    )
