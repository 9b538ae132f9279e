"""CORDIS task A evaluation through the matcher (the real dev folder, a fake embedder)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from horizon_match.config import load_settings
from horizon_match.db import Database
from horizon_match.embedding import EmbedderSet, FakeEmbedder
from horizon_match.errors import InputError
from horizon_match.evaluation import (
    evaluate_cordis,
    metrics,
    rank_of,
    read_cordis_folder,
    tfidf_baseline,
    topic_folds,
)
from horizon_match.training import TrainingOptions

LIMIT = 12


@pytest.fixture
def cache_db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'eval.db'}")
    yield database
    database.close()


def _subset(cordis_dev: Path, target: Path, n: int, *, drop_targets: bool) -> Path:
    """The first n queries with the folder's files; optionally without any target project."""
    target.mkdir()
    lines = (cordis_dev / "task_a_topic_matching.jsonl").read_text().splitlines()[:n]
    (target / "task_a_topic_matching.jsonl").write_text("\n".join(lines) + "\n")
    for name in ("topics.csv", "project_euroscivoc.csv"):
        shutil.copy(cordis_dev / name, target / name)
    queries = [json.loads(line) for line in lines]
    profile = {p for q in queries for p in q["profile_project_ids"]}
    targets = {q["target_project_id"] for q in queries} - profile
    with (cordis_dev / "projects.csv").open(newline="", encoding="utf-8") as src, \
            (target / "projects.csv").open("w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for row in reader:
            if row["id"] in profile or (row["id"] in targets and not drop_targets):
                writer.writerow(row)
    return target


def test_report_has_both_methods_on_both_subsets(cordis_dev: Path, cache_db: Database, tmp_path: Path) -> None:
    settings = load_settings({}, db=cache_db.url)
    rankings = tmp_path / "rankings.jsonl"
    report = evaluate_cordis(cache_db, settings, cordis_dev, limit=LIMIT, rankings=rankings,
                             embedder=FakeEmbedder())
    data = read_cordis_folder(cordis_dev, limit=LIMIT)
    assert report.queries == LIMIT
    assert report.no_overlap == sum(not data.overlaps(q) for q in data.queries)
    assert set(report.results) == {"matcher", "tfidf"}
    for method in report.results.values():
        assert method["all"]["n"] == LIMIT and method["no_overlap"]["n"] == report.no_overlap
        for m in method.values():
            assert 0 <= m["recall@1"] <= m["recall@5"] <= m["recall@10"] <= 1
            assert 0 < m["mrr"] <= 1
    lines = [json.loads(x) for x in rankings.read_text().splitlines()]
    candidates = {c.topic for c in data.candidates(2022)}
    assert [x["query_id"] for x in lines] == [q.query_id for q in data.queries]
    hits10 = 0
    for line, q in zip(lines, data.queries, strict=True):
        assert len(line["ranked"]) >= 50 and len(set(line["ranked"])) == len(line["ranked"])
        assert set(line["ranked"]) <= candidates
        hits10 += q.target_topic in line["ranked"][:10]
    # the rankings file and the reported numbers describe the same ranking
    assert report.results["matcher"]["all"]["recall@10"] == round(hits10 / LIMIT, 4)
    assert "matcher" in report.table() and "no_overlap" in report.table()


def test_target_projects_are_never_read(cordis_dev: Path, tmp_path: Path) -> None:
    full = _subset(cordis_dev, tmp_path / "with", LIMIT, drop_targets=False)
    bare = _subset(cordis_dev, tmp_path / "without", LIMIT, drop_targets=True)
    out = []
    for folder in (full, bare):
        database = Database(f"sqlite:///{tmp_path / (folder.name + '.db')}")
        rankings = tmp_path / f"{folder.name}.jsonl"
        evaluate_cordis(database, load_settings({}, db=database.url), folder, rankings=rankings,
                        embedder=FakeEmbedder())
        database.close()
        out.append(rankings.read_text())
    assert out[0] == out[1]


def test_rank_and_metrics() -> None:
    import numpy as np

    scores = np.array([0.2, 0.9, 0.2, 0.5])
    assert rank_of(scores, 1) == 1
    assert rank_of(scores, 0) == 3  # ties go to the earlier index
    assert rank_of(scores, 2) == 4
    m = metrics([1, 2, 20])
    assert m["n"] == 3 and m["recall@1"] == round(1 / 3, 4) and m["recall@10"] == round(2 / 3, 4)
    assert m["mrr"] == round((1 + 0.5 + 0.05) / 3, 4)


def test_tfidf_baseline_is_the_plain_one(cordis_dev: Path) -> None:
    """The issue's reference: plain TF-IDF of the concatenated profile gets MRR 0.047 and
    Recall@10 0.122 on the queries without topic overlap."""
    data = read_cordis_folder(cordis_dev)
    no_overlap = [q for q in data.queries if not data.overlaps(q)]
    assert len(no_overlap) == 9246
    ranks = tfidf_baseline(data, no_overlap, data.candidates(2022))
    m = metrics(ranks)
    assert abs(m["mrr"] - 0.047) < 0.002 and abs(m["recall@10"] - 0.122) < 0.003


def test_folds_split_topics_and_cross_fitting_runs(cordis_dev: Path, cache_db: Database) -> None:
    data = read_cordis_folder(cordis_dev, limit=40)
    folds = topic_folds(data.queries, 3)
    assert folds == topic_folds(data.queries, 3)
    assert set(folds) == {q.target_topic for q in data.queries} and set(folds.values()) == {0, 1, 2}
    q = data.queries[0]
    held = {data.projects[p].topic for p in q.profile_ids if p in data.projects}
    assert data.profile(q, exclude_topics=held).projects == []
    report = evaluate_cordis(cache_db, load_settings({}, db=cache_db.url), cordis_dev, limit=40,
                             folds=3, options=TrainingOptions(epochs=2, negatives=31),
                             embedder=FakeEmbedder())
    assert report.results["matcher"]["all"]["n"] == 40
    assert "held-out" in report.ranker


def test_bad_folder_is_a_clear_error(tmp_path: Path, cache_db: Database) -> None:
    settings = load_settings({}, db=cache_db.url)
    with pytest.raises(InputError, match="task_a_topic_matching.jsonl is missing"):
        evaluate_cordis(cache_db, settings, tmp_path, embedder=FakeEmbedder())
    (tmp_path / "task_a_topic_matching.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match=r"task_a_topic_matching.jsonl:1: not a task A query"):
        evaluate_cordis(cache_db, settings, tmp_path, embedder=FakeEmbedder())
    with pytest.raises(InputError, match="--task a"):
        read_cordis_folder(tmp_path, task="b")


def test_cli_evaluate_json(cordis_dev: Path, cache_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import cli
    import horizon_match.evaluation as evaluation

    monkeypatch.setattr(evaluation, "load_embedder_set", lambda settings: EmbedderSet(FakeEmbedder()))
    result = CliRunner().invoke(cli.main, ["--db", cache_db.url, "evaluate", "cordis", str(cordis_dev),
                                           "--task", "a", "--limit", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["queries"] == 5 and set(report["results"]["matcher"]) == {"all", "no_overlap"}
    bad = CliRunner().invoke(cli.main, ["--db", cache_db.url, "evaluate", "cordis", str(cordis_dev / "nope")])
    assert bad.exit_code == 1 and "not a folder" in bad.output


@pytest.mark.integration
def test_shipped_model_and_ranker_on_a_few_queries(cordis_dev: Path, cache_db: Database) -> None:
    report = evaluate_cordis(cache_db, load_settings({}, db=cache_db.url), cordis_dev, limit=3)
    assert report.results["matcher"]["all"]["n"] == 3
    assert report.embedded["computed"] > 0
    again = evaluate_cordis(cache_db, load_settings({}, db=cache_db.url), cordis_dev, limit=3)
    assert again.embedded["computed"] == 0
    assert again.results == report.results
