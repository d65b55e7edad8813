"""The synthetic benchmark: shape, determinism, independence, content and difficulty."""
from __future__ import annotations

import time

import numpy as np
import pytest

from scoring_lab.data import synthetic as S
from scoring_lab.errors import DataError

# name: (labels, train incl. val, test) -- the papers' task table
TABLE = {
    "anna_vs_carla": (4, 955, 239),
    "breaking_down_hydrogen_peroxide": (4, 666, 167),
    "carlos_javier_atomic_model": (5, 956, 240),
    "dry_ice_model": (3, 1111, 278),
    "gas_filled_balloons": (3, 958, 240),
    "layers_in_test_tube": (10, 956, 240),
    "model_for_making_water": (5, 836, 210),
    "namis_careful_experiment": (6, 653, 164),
    "natural_sugar": (5, 956, 239),
}


@pytest.fixture(scope="module")
def bench():
    return S.generate_benchmark(seed=0)


def _same_split(a, b):
    return (list(a.ids) == list(b.ids) and a.texts == b.texts and np.array_equal(a.labels, b.labels)
            and np.array_equal(a.scores, b.scores) and np.allclose(a.ability, b.ability))


def test_task_names_and_order(bench):
    assert S.TASK_NAMES == tuple(TABLE)
    assert list(bench) == list(TABLE)


def test_exact_sizes_and_label_counts(bench):
    for name, (n_labels, n_train, n_test) in TABLE.items():
        t = bench[name]
        assert len(t.train) + len(t.val) == n_train, name
        assert len(t.test) == n_test, name
        assert abs(len(t.val) - round(0.1 * n_train)) <= 1, name
        assert t.label_names == [f"E{i + 1}" for i in range(n_labels)]
        assert t.n_labels == n_labels
        for s in t.splits().values():
            assert s.labels.shape == (len(s), n_labels)
            assert set(np.unique(s.labels)) <= {0, 1}
            assert s.ability.shape == (len(s),)


def test_task_fields_and_meta(bench):
    fams = S.task_families()
    for name, t in bench.items():
        assert t.kind == "multilabel" and t.n_classes == 4
        m = t.meta
        assert m["source"] == "synthetic" and m["family"] == S.family_of(name)
        assert name in fams[m["family"]]
        assert len(m["scenario"]) > 50 and m["question"].endswith((".", "?"))
        assert [r["id"] for r in m["rubric"]] == t.label_names
        for r in m["rubric"]:
            assert set(r) >= {"id", "perspective", "description"}
            assert set(r["perspective"].split("+")) <= {"SEP", "CCC", "DCI"}
            assert len(r["description"]) > 20
        assert m["seed"] == 0 and m["scale"] == 1.0 and m["difficulty"] == 0.5
        assert m["knobs"] == S.DifficultyKnobs.from_level(0.5).as_dict()


def test_ids_unique_and_val_keeps_train_ids(bench):
    for name, t in bench.items():
        ids = [i for s in t.splits().values() for i in s.ids]
        assert len(ids) == len(set(ids)), name
        assert all(i.startswith(f"{name}-train-") for i in list(t.train.ids) + list(t.val.ids))
        assert all(i.startswith(f"{name}-test-") for i in t.test.ids)
        assert t.test.ids[0] == f"{name}-test-00000"


def test_determinism_same_seed_and_different_seed(bench):
    again = S.generate_benchmark(seed=0)
    other = S.generate_benchmark(seed=1)
    for name in TABLE:
        for split in ("train", "val", "test"):
            assert _same_split(getattr(bench[name], split), getattr(again[name], split)), (name, split)
        assert bench[name].test.texts != other[name].test.texts
        assert not np.array_equal(bench[name].test.labels, other[name].test.labels)


def test_one_task_alone_equals_it_in_the_full_run(bench):
    for name in ("natural_sugar", "dry_ice_model"):
        alone = S.generate_benchmark(seed=0, tasks=[name])
        assert list(alone) == [name]
        for split in ("train", "val", "test"):
            assert _same_split(getattr(alone[name], split), getattr(bench[name], split))
    pair = S.generate_benchmark(seed=0, tasks=["natural_sugar", "anna_vs_carla"])
    assert list(pair) == ["anna_vs_carla", "natural_sugar"]  # table order


def test_scale_shrinks_sizes_with_floors():
    small = S.generate_benchmark(seed=0, scale=0.1)
    for name, (_, n_train, n_test) in TABLE.items():
        t = small[name]
        assert len(t.train) + len(t.val) == max(40, round(n_train * 0.1))
        assert len(t.test) == max(12, round(n_test * 0.1))
    tiny = S.generate_benchmark(seed=0, scale=0.01, tasks=["dry_ice_model"])["dry_ice_model"]
    assert len(tiny.train) + len(tiny.val) == 40 and len(tiny.test) == 12


def test_holistic_score_matches_labels(bench):
    for t in bench.values():
        L = len(t.label_names)
        for s in t.splits().values():
            k = s.labels.sum(axis=1)
            expect = np.where(k == 0, 0, np.where(k == L, 3, np.where(2 * k <= L, 1, 2)))
            assert np.array_equal(s.scores, expect)
        assert set(np.unique(t.train.scores)) == {0, 1, 2, 3}
    assert list(S.holistic_scores(np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]))) \
        == [0, 1, 1, 2, 3]


def test_prevalences_not_degenerate(bench):
    for name, t in bench.items():
        p = t.prevalence("train")
        assert np.all((p > 0.05) & (p < 0.95)), (name, p)


def test_ability_drives_labels(bench):
    for name, t in bench.items():
        r = np.corrcoef(t.train.ability, t.train.labels.sum(axis=1))[0, 1]
        assert r > 0.4, (name, r)


def _heldout_chunks(name):
    """Literal runs (>= 3 words, no slots) of the held-out paraphrases of the task's concepts."""
    spec = S._bank()["tasks"][name]
    chunks = set()
    for dim in spec.dims:
        for parts in spec.pools[dim.concept]["heldout"]:
            for p in parts:
                if isinstance(p, str) and len(p.split()) >= 3:
                    chunks.add(p.strip())
    return chunks


def test_test_split_uses_heldout_phrasing_never_seen_in_train(bench):
    for name, t in bench.items():
        chunks = _heldout_chunks(name)
        assert chunks, name
        train_texts = t.train.texts + t.val.texts
        assert not [c for c in chunks if any(c in x for x in train_texts)], name
        n_test_hits = sum(any(c in x for c in chunks) for x in t.test.texts)
        assert n_test_hits >= 0.05 * len(t.test), (name, n_test_hits)


def test_misconceptions_and_noise_present(bench):
    t = bench["gas_filled_balloons"]
    texts = t.train.texts
    assert any("gas a and gas b are the same" in x for x in texts)
    assert any(x in {"idk", "i dont know", "?", "lol"} for x in texts)
    offtopic = set(S._bank()["shared"]["off_topic"])
    for s in t.splits().values():
        idx = [i for i, x in enumerate(s.texts) if x in offtopic]
        assert idx and s.labels[idx].sum() == 0


def test_families_cover_every_task_once_and_share_concepts():
    fams = S.task_families()
    assert len(fams) == 3
    members = [n for ts in fams.values() for n in ts]
    assert sorted(members) == sorted(TABLE) and len(members) == len(set(members))
    assert fams["properties_identify_substances"] == [
        "anna_vs_carla", "gas_filled_balloons", "layers_in_test_tube", "natural_sugar"]
    assert fams["chemical_reactions_make_new_substances"] == [
        "breaking_down_hydrogen_peroxide", "namis_careful_experiment"]
    assert fams["particle_and_atomic_models"] == [
        "carlos_javier_atomic_model", "dry_ice_model", "model_for_making_water"]
    concepts = {n: {d.concept for d in S._bank()["tasks"][n].dims} for n in TABLE}
    for fam, names in fams.items():
        for a in names:
            # every task shares at least one concept with another task of its family ...
            assert any(concepts[a] & concepts[b] for b in names if b != a), a
            # ... and none with a task of another family
            assert not any(concepts[a] & concepts[b] for b in TABLE if S.family_of(b) != fam), a


def test_unknown_task_is_a_data_error():
    with pytest.raises(DataError) as err:
        S.generate_benchmark(tasks=["gas_filled_balloons", "gas_balloons"])
    msg = str(err.value)
    assert "'gas_balloons'" in msg and "anna_vs_carla" in msg and "natural_sugar" in msg
    with pytest.raises(DataError, match="nope"):
        S.family_of("nope")


def test_bad_arguments():
    with pytest.raises(ValueError, match="difficulty"):
        S.generate_benchmark(difficulty=1.5, tasks=["dry_ice_model"])
    with pytest.raises(ValueError, match="scale"):
        S.generate_benchmark(scale=0, tasks=["dry_ice_model"])
    with pytest.raises(ValueError, match="unknown difficulty knob"):
        S.DifficultyKnobs.from_level(0.5, typo=0.1)
    with pytest.raises(ValueError, match="rater_noise"):
        S.DifficultyKnobs(rater_noise=2.0)


def test_knobs_levels_and_overrides():
    lo, mid, hi = (S.DifficultyKnobs.from_level(d) for d in (0.0, 0.5, 1.0))
    for f in ("heldout_share", "misconception_rate", "typo_rate", "offtopic_rate", "rater_noise"):
        assert getattr(lo, f) < getattr(mid, f) < getattr(hi, f)
    assert mid == S.DifficultyKnobs()
    t = S.generate_benchmark(seed=0, tasks=["dry_ice_model"], knobs={"rater_noise": 0.0, "offtopic_rate": 0.0})
    k = t["dry_ice_model"].meta["knobs"]
    assert k["rater_noise"] == 0.0 and k["typo_rate"] == mid.typo_rate
    clean = S.generate_benchmark(seed=0, tasks=["dry_ice_model"],
                                 knobs=S.DifficultyKnobs(0.0, 0.0, 0.0, 0.0, 0.0))["dry_ice_model"]
    assert not any(x in set(S._bank()["shared"]["off_topic"]) for x in clean.train.texts)


def test_generation_is_fast():
    S.generate_benchmark(seed=5, scale=0.05)  # content loaded and cached
    t0 = time.perf_counter()
    S.generate_benchmark(seed=7)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.slow
def test_baseline_in_band_and_difficulty_monotone():
    names = ["gas_filled_balloons", "namis_careful_experiment"]
    from scoring_lab.models.baseline import fit_tfidf_baseline
    from scoring_lab.models.per_task import evaluate

    f = {d: [evaluate(fit_tfidf_baseline(t), t)["micro_f1"]
             for t in S.generate_benchmark(seed=0, difficulty=d, tasks=names).values()]
         for d in (0.0, 0.5, 1.0)}
    for i, name in enumerate(names):
        assert f[0.0][i] > f[0.5][i] > f[1.0][i], (name, f)
        assert 0.7 <= f[0.5][i] <= 0.9, (name, f)


def test_family_is_visible_in_the_text(bench):
    """Each task's nearest task (cosine of mean TF-IDF vectors of train texts) is in its own family."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    names = list(bench)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    vec.fit([x for t in bench.values() for x in t.train.texts])
    C = np.vstack([np.asarray(vec.transform(bench[n].train.texts).mean(axis=0)) for n in names])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    sim = C @ C.T
    np.fill_diagonal(sim, -1.0)
    for i, name in enumerate(names):
        assert S.family_of(names[int(np.argmax(sim[i]))]) == S.family_of(name), name
