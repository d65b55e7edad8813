"""The MoE chapter's study: its helpers against hand-computed values, and the protocol end to end on the
smoke profile (tiny backbone, tiny benchmark): the search chooses on validation, the tables have the
paper's shape, adaptation leaves every old part bit-identical, and the claims come from the results."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from scoring_lab import claims, published
from scoring_lab.moe import adaptation, evaluation, inputs, prose, protocol, report, search
from scoring_lab.moe.study import MoEStudy
from scoring_lab.profiles import load_profile
from scoring_lab.book.run import setup


def test_logits_invert_probabilities_and_clip_the_extremes():
    p = np.array([[0.5, 0.880797, 0.0, 1.0]])
    z = inputs.logits_of(p)
    assert z[0, 0] == pytest.approx(0.0) and z[0, 1] == pytest.approx(2.0, abs=1e-5)
    assert z[0, 2] == pytest.approx(-np.log(1e6 - 1), rel=1e-4) and np.isfinite(z).all()


def test_folds_cover_every_row_once_and_rehearsal_is_a_seeded_share():
    folds = inputs.label_folds(10, 3, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(10)) and [len(f) for f in folds] == [4, 3, 3]
    with pytest.raises(ValueError, match="2 <= k <= 10"):
        inputs.label_folds(10, 1, seed=0)
    rows = adaptation.rehearsal_rows(95, 0.1, seed=3)
    assert len(rows) == 10 and len(set(rows)) == 10 and (np.diff(rows) > 0).all()
    assert rows.tolist() == adaptation.rehearsal_rows(95, 0.1, seed=3).tolist()
    assert rows.tolist() != adaptation.rehearsal_rows(95, 0.1, seed=4).tolist()


def test_specialisation_sees_families_that_route_alike():
    usage = pd.DataFrame([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]], index=list("abcd"))
    fam = {"a": "x", "b": "x", "c": "y", "d": "y"}
    out = evaluation.usage_specialisation(usage, fam, permutations=500, seed=0)
    assert out["same_family_pairs"] == 2 and out["pairs"] == 6
    assert out["within_family_js"] < out["between_family_js"]
    # of the 3 ways to pair four tasks, only the true one is this close: p near 1/3
    assert out["p_value"] == pytest.approx(1 / 3, abs=0.06)
    alike = evaluation.usage_specialisation(usage, {"a": "x", "c": "x", "b": "y", "d": "y"}, permutations=200)
    assert alike["within_family_js"] > alike["between_family_js"]


def test_routing_summary_reads_entropy_favourites_and_the_balancing_terms():
    r = search.routing_summary(np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    assert r["task_entropy"] == pytest.approx(0, abs=1e-9) and r["pooled_entropy"] == pytest.approx(1.0)
    assert r["max_entropy"] == 2 and r["favourites"] == 2 and r["task_js"] == pytest.approx(1.0)
    assert r["max_task_lb"] == pytest.approx(3 / 16) and r["pooled_lb"] == pytest.approx(0.0625)
    uniform = search.routing_summary(np.full((3, 4), 0.25))
    assert uniform["task_entropy"] == pytest.approx(2.0) and uniform["task_js"] == pytest.approx(0, abs=1e-6)
    assert uniform["pooled_lb"] == 0 and uniform["favourites"] == 1
    table = pd.DataFrame([{"lambda_lb": lb, "chosen": lb == 0.01, **search.routing_summary(u), "val_kappa": k}
                          for lb, u, k in ((0.0, np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), 0.5),
                                           (0.01, np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1]]), 0.6),
                                           (1.0, np.full((2, 4), 0.25), 0.4))])
    text = prose.balancing_text(table)
    assert "more uniform (mean entropy 0.00 to 2.00 bits" in text and "closer together" in text
    assert "2 and 1 distinct favourite" in text and "one task" in text


def test_the_papers_tables_keep_its_numbers_and_averages():
    table, source = report.paper_table3()
    assert "Table 3" in source and set(table["method"]) == set(protocol.METHODS)
    avg = table[table["task"] == "average"].set_index("method")
    assert avg.loc["UniMoE-Guided", "kappa"] == pytest.approx(0.6555)
    per_task = table[table["task"] != "average"].groupby("method")["kappa"].mean()
    assert per_task["MTL"] == pytest.approx(avg.loc["MTL", "kappa"], abs=1e-4)   # printed averages are means
    assert table.loc[(table["method"] == "UniMoE") & (table["task"] == "gas_filled_balloons"), "kappa"].item() \
        == pytest.approx(0.9091)                                                   # its Task 3
    t5, _ = published.unimoe_table5()
    assert t5.loc[(t5["method"] == "MTL") & (t5["task"] == "dry_ice_model") & (t5["metric"] == "kappa"),
                  "value"].item() == pytest.approx(0.2221)                        # its Task 9
    assert published.unimoe_expert_usage()["examples"][0][:3] == ("breaking_down_hydrogen_peroxide", 2, 2)


def _table3(values: dict[str, float]) -> pd.DataFrame:
    rows = []
    for method, k in values.items():
        for task in ("a", "b"):
            rows.append({"method": method, "task": task, "kappa": k, "macro_f1": k + 0.1, "micro_f1": k + 0.2,
                         "per_label_accuracy": k + 0.25, "exact_match": k, "n_test": 10})
        rows.append({"method": method, "task": "average", "kappa": k, "macro_f1": k + 0.1, "micro_f1": k + 0.2,
                     "per_label_accuracy": k + 0.25, "exact_match": k, "n_test": 20})
    return pd.DataFrame(rows)


def test_table3_beside_the_paper_and_in_its_layout():
    t3 = _table3({"Individual": 0.7, "MTL": 0.5, "UniMoE": 0.55, "UniMoE-Guided": 0.6})
    versus = report.table3_vs_paper(t3)
    row = versus[(versus["metric"] == "kappa") & (versus["method"] == "MTL")].iloc[0]
    assert row["ours"] == pytest.approx(0.5) and row["paper"] == pytest.approx(0.5559)
    assert list(versus["metric"].unique()) == list(protocol.METRICS)
    wide = report.wide_table(t3, ["a", "b"], {"a": 1, "b": 2})
    assert list(wide.columns) == ["metric", "method", "1: a", "2: b", "average"] and len(wide) == 16


@pytest.fixture(scope="module")
def smoke_study():
    run = setup("moe", "smoke")
    profile = run.profile
    study = MoEStudy(run.tasks, run.scorers(progress=False), profile, run.cache, seed=0, progress=False)
    return study


def test_the_held_out_tasks_are_the_profiles_present_or_another_sources_last():
    run = setup("moe", "smoke")
    tasks = run.tasks
    assert protocol.held_out_tasks(tasks, ("carlos_javier_atomic_model", "dry_ice_model")) == \
        ["carlos_javier_atomic_model", "dry_ice_model"]
    assert protocol.held_out_tasks(tasks, ("no_such_task",)) == [list(tasks)[-1]]
    # a source with only some of the named tasks holds those out (the paper's held-out tasks it has)
    assert protocol.held_out_tasks(tasks, ("dry_ice_model", "no_such_task")) == ["dry_ice_model"]
    # never every task: something must be left to train on
    two = {t: tasks[t] for t in ("carlos_javier_atomic_model", "dry_ice_model")}
    assert protocol.held_out_tasks(two, ("carlos_javier_atomic_model", "dry_ice_model")) == ["dry_ice_model"]
    assert protocol.applies(tasks)
    one = {"natural_sugar": tasks["natural_sugar"]}
    assert not protocol.applies(one) and "at least two tasks" in protocol.applies(one).reason
    with pytest.raises(ValueError, match="at least two tasks"):
        MoEStudy(one, {}, run.profile, run.cache)
    # scored tasks run too (a softmax head each); a source mixing rubric and scored tasks does not
    import copy
    scored = copy.copy(tasks["natural_sugar"])
    scored.kind, scored.n_classes = "multiclass", 3
    assert protocol.applies({"a": scored, "b": scored})
    mixed = protocol.applies({"natural_sugar": tasks["natural_sugar"], "scored": scored})
    assert not mixed and "one kind of task at a time" in mixed.reason and "mix kinds" in mixed.reason
    assert protocol.decide(np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]), "multiclass").tolist() == [1, 0]
    assert protocol.decide(np.array([[0.2, 0.5], [0.6, 0.49]]), "multilabel").tolist() == [[0, 1], [1, 0]]
    assert protocol.ours_for(["kappa", "micro_f1", "per_label_accuracy"], "multiclass") == ["kappa", "accuracy"]


@pytest.mark.slow
def test_the_study_searches_on_validation_and_fills_the_papers_tables(smoke_study):
    study = smoke_study
    assert study.new == ["carlos_javier_atomic_model", "dry_ice_model"] and len(study.old) == 7
    search = study.search()
    assert set(search["method"]) == {"UniMoE", "UniMoE-Guided"}
    assert search.groupby("method")["chosen"].sum().tolist() == [1, 1]
    assert (search.loc[search["method"] == "UniMoE-Guided", "lambda_kd"] > 0).all()
    t3 = study.table3()
    assert list(t3.columns[:6]) == ["method", "task", "kappa", "macro_f1", "micro_f1", "per_label_accuracy"]
    assert t3.groupby("method").size().to_dict() == {m: 8 for m in protocol.METHODS}
    avg = t3[(t3["method"] == "MTL") & (t3["task"] == "average")].iloc[0]
    per_task = t3[(t3["method"] == "MTL") & (t3["task"] != "average")]
    assert avg["kappa"] == pytest.approx(per_task["kappa"].mean())
    usage = study.expert_usage()
    assert usage.shape == (7, study.model("UniMoE-Guided").settings.n_experts)
    np.testing.assert_allclose(usage.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_the_trained_column_starts_from_the_frozen_models_and_keeps_them_beside(smoke_study):
    study = smoke_study
    assert study.trained is study.main and study.frozen.setup.frozen_encoder
    assert study.setup.encoder_label == "top layer trained" and study.frozen.setup.encoder_label == "frozen encoder"
    frozen, trained = study.selection.model("MTL"), study.model("MTL")
    assert frozen.model.layer == 2 and trained.model.layer == 1 and trained.key != frozen.key
    assert trained.settings.lr == study.trained.models.settings_of(frozen).lr
    assert trained.settings.max_epochs == study.settings.encoder_epochs
    # the warm start: at a vanishing rate the model scores as the frozen one (every head in its place)
    start = study.trained.store.fit_from("MTL, start", frozen, replace(trained.settings, lr=1e-12))
    for t in study.old:
        np.testing.assert_allclose(study.proba(start, t, "test"), study.proba(frozen, t, "test"), atol=1e-4)
    np.testing.assert_array_equal(study.proba(frozen, study.old[0], "test"),
                                  study.frozen.evaluation.proba(frozen, study.old[0], "test"))
    single = study.trained.models.single_task(study.old[1])
    assert single.model.heads.names == [study.old[1]] and single.model.layer == 1
    f = study.freezing()
    assert list(f.columns[:3]) == ["method", "encoder", "kappa"]
    assert set(zip(f["method"], f["encoder"])) == {("Individual", "-"), ("MTL, one task at a time", "top layer trained"),
                                                   *((m, e) for m in ("MTL", "UniMoE", "UniMoE-Guided")
                                                     for e in ("frozen encoder", "top layer trained",
                                                               "frozen encoder, trained on as long"))}
    # the freezing control: the frozen model trained on with the trained column's settings, no layer trained
    more = study.trained.models.continued("MTL")
    assert more.model.layer == 2 and more.settings == study.trained.models.settings_of(frozen)
    assert more.key not in (frozen.key, trained.key) and len(more.history) >= 1
    assert "the layer for" in prose.freezing_text(study.setup, f)
    avg = study.table3().query("task == 'average'").set_index("method")["kappa"]
    row = f[(f["method"] == "MTL") & (f["encoder"] == "top layer trained")].iloc[0]
    assert row["kappa"] == pytest.approx(avg["MTL"]) and row["gap_to_individual"] == pytest.approx(
        avg["Individual"] - avg["MTL"])
    assert "freezing accounts for" in prose.freezing_text(study.setup, f)


@pytest.mark.slow
def test_the_frozen_columns_models_train_from_each_seed_and_the_claims_pool_them(smoke_study):
    study = smoke_study
    seeds = study.selection.seeds()
    assert study.selection.seed_list() == [0, 1] and len(seeds) == 2 * 5
    assert set(seeds["model"]) == {"MTL", "UniMoE", "UniMoE-Guided", "dense block (M = 1, same size)", "MTL + KD"}
    first = seeds[seeds["seed"] == 0].set_index("model")["kappa"]
    controls = study.controls().set_index("model")["kappa"]
    assert first["MTL + KD"] == pytest.approx(controls["MTL + KD"]) and first["UniMoE"] == pytest.approx(controls["UniMoE"])
    one, two = study.selection.seeded("UniMoE")
    assert one.key == study.selection.model("UniMoE").key and two.key != one.key
    ev = study.evidence()
    assert ev.preds["UniMoE (frozen encoder)"][study.old[0]].shape[0] == 2
    assert ev.preds["UniMoE"][study.old[0]].ndim == 2          # the trained column: one seed
    assert "seeds" in prose.seeds_text(seeds) and "±" in prose.seeds_text(seeds)


@pytest.mark.slow
def test_the_search_tries_each_temperature_and_the_balancing_probe_retrains_unimoe(smoke_study):
    study = smoke_study
    s = study.search()
    guided = s[s["method"] == "UniMoE-Guided"]
    assert sorted(guided["tau"]) == [1.0, 3.0] and s.loc[s["method"] == "UniMoE", "tau"].isna().all()
    chosen = guided[guided["chosen"]].iloc[0]
    assert study.selection.chosen_settings("UniMoE-Guided").tau == chosen["tau"]
    assert study.selection.control_settings("MTL + KD").tau == chosen["tau"]
    b = study.selection.load_balancing()
    assert list(b["lambda_lb"]) == [0.01, 1.0] and list(b["chosen"]) == [True, False]
    assert (b["task_entropy"] <= b["max_entropy"] + 1e-9).all() and (b["favourites"] >= 1).all()
    assert "λ_LB 0.01 to 1" in prose.balancing_text(b)


@pytest.mark.slow
def test_kd_targets_are_the_teachers_logits_joined_by_response_id(smoke_study):
    study = smoke_study
    task = study.old[0]
    settings = replace(study.settings.model, lambda_kd=0.5)
    data = study.inputs.task_data(task, "train", settings, protocol.IN_SAMPLE)
    proba = study.setup.scorers[task].predict_proba(study.tasks[task].train)
    np.testing.assert_allclose(data.teacher, inputs.logits_of(proba), atol=1e-4)
    rows = np.array([3, 0, 5])
    sub = study.inputs.task_data(task, "train", settings, protocol.IN_SAMPLE, rows)
    np.testing.assert_allclose(sub.teacher, data.teacher[rows], atol=1e-6)
    assert sub.ids.tolist() == study.tasks[task].train.ids[rows].tolist()


@pytest.mark.slow
def test_adaptation_keeps_the_encoder_the_old_heads_and_mtls_moe_free_parts_bit_identical(smoke_study):
    study = smoke_study
    for method in ("MTL", "UniMoE-Guided"):
        base, adapted = study.model(method).model, study.adapted(method).model
        assert adapted.heads.names == study.old + study.new
        before = dict(base.named_parameters())
        for name, p in adapted.named_parameters():
            if name.startswith("heads.heads.") and int(name.split(".")[2]) >= len(study.old):
                continue    # the new tasks' heads
            if method != "MTL" and name.startswith("moe."):
                continue    # UniMoE-Guided adapts its MoE block
            assert torch.equal(p, before[name]), f"{method}: {name} changed"
    share = study.trainable_share().set_index("method")
    assert 0 < share.loc["MTL", "share"] < share.loc["UniMoE-Guided", "share"] < 1
    g = study.generalization()
    assert set(g["task"]) == set(study.new) and set(g["method"]) == {"Individual", "MTL", "UniMoE-Guided"}
    f = study.forgetting()
    assert list(f.columns[:3]) == ["metric", "before", "after"] and list(f["metric"]) == list(protocol.METRICS)
    # the control adapted without rehearsal: another model (another key), the old tasks' figures beside
    bare, rehearsed = study.adaptation.adapted("UniMoE-Guided", rehearsal=0.0), study.adapted("UniMoE-Guided")
    assert bare.key != rehearsed.key and "after_no_rehearsal" in f.columns
    assert study.adaptation.adapted("UniMoE-Guided", rehearsal=study.settings.rehearsal).key == rehearsed.key


@pytest.mark.slow
def test_resources_variants_and_claims_come_from_the_results(smoke_study, tmp_path):
    study = smoke_study
    res = study.resources()
    assert list(res.columns[:5]) == ["model", "params", "disk_mb", "latency_ms_batch1", "latency_ms_batch32"]
    by = res.set_index("model")
    individual = [m for m in by.index if m.startswith("Individual")][0]
    assert by.loc[individual, "params"] > 6 * by.loc["MTL", "params"] and by.loc["UniMoE-Guided", "relative_size"] == 1
    assert (res["latency_ms_batch1"] > 0).all() and (res["disk_mb"] > 0).all()
    v = study.variants()
    assert set(v["variant"]) == {"tokens", "pooled", "out-of-fold"}      # smoke sets teacher_folds
    assert (v.loc[v["variant"] != "out-of-fold", "max_epochs"] == study.settings.variant_epochs).all()
    t3, g, f, usage = study.table3(), study.generalization(), study.forgetting(), study.expert_usage()
    ev = study.evidence()
    for t in study.old:      # the gate weights per response average to the chapter's usage table
        np.testing.assert_allclose(ev.gates[t].mean(0), usage.loc[t].to_numpy(), atol=1e-5)
    out = report.moe_claims(study.setup, res, ev)
    table = claims.claims_table(out)
    table.to_csv(tmp_path / "claims.csv", index=False)
    table = claims.read_claims(tmp_path / "claims.csv")     # the new columns; a test and n behind each verdict
    assert set(table["verdict"]) <= set(claims.VERDICTS) and len(table) == 17 and (table["paper"] == "moe").all()
    measured = table[(table["basis"] == "measured") & (table["verdict"] != "not tested")]
    assert (measured["test"] != "").all() and (measured["n"] != "").all() and len(measured) == 14   # + 3 controls, 2 encoder
    # the effects are the tables' own differences, now with an interval over the same test responses
    avg = t3[t3["task"] == "average"].set_index("method")["kappa"]
    row = table.set_index("claim").loc["UniMoE (no KD) beats MTL on the average of Tasks 1-7"]
    assert float(row["effect"]) == pytest.approx(avg["UniMoE"] - avg["MTL"], abs=1e-6)
    assert float(row["ci_low"]) <= float(row["effect"]) <= float(row["ci_high"])
    drop = f.set_index("metric").loc["kappa"]
    row = table[table["claim"].str.startswith("Adaptation costs")].iloc[0]
    assert float(row["effect"]) == pytest.approx(drop["before"] - drop["after"], abs=1e-6)
    assert study.timing["claims (paired bootstraps)"] > 0
    text = prose.summary_text(study.setup, t3, usage, evaluation.usage_specialisation(usage, study.families()), res,
                              g, f, v)
    k = t3[(t3["method"] == "MTL") & (t3["task"] == "average")]["kappa"].item()
    assert f"MTL {k:.3f}" in text
    fit = study.teacher_fit()
    assert set(fit["split"]) == {"train", "val"} and fit["agreement"].between(0, 1).all()
    words = prose.teacher_text(study.setup, fit)
    assert f"{fit[fit['split'] == 'train']['agreement'].mean():.3f}" in words and "teacher_folds" in words


def test_the_profiles_moe_sections_load_and_reject_bad_values():
    from scoring_lab.profiles import ProfileError, MoEChapterSettings, MultiTaskSettings

    d, p = load_profile("default").moe, load_profile("paper").moe
    assert d.trainable_layers == 1 and d.encoder_epochs == 3 and d.model.moe_on == "pooled" and d.search == "sequential"
    assert p.trainable_layers is None and p.model.moe_on == "tokens" and p.search == "joint"
    assert p.teacher["lora"].r == 32 and p.n_experts == (3, 4, 5) and p.lambda_kd == (0.05, 0.1, 0.3, 0.5)
    with pytest.raises(ProfileError, match="moe.teacher_folds"):
        MoEChapterSettings(teacher_folds=1)
    with pytest.raises(ProfileError, match="moe_on"):
        MultiTaskSettings(moe_on="experts")
    with pytest.raises(ProfileError, match="unknown train setting"):
        MoEChapterSettings(teacher={"learning_rate": 1})


@pytest.mark.slow
def test_the_paper_profiles_path_fine_tunes_the_whole_encoder_with_token_wise_experts(tmp_path):
    """What `paper` runs (on a GPU), on the tiny backbone: no frozen states, experts on every token,
    the encoder's own weights trained and saved with the model."""
    run = setup("moe", "smoke")
    moe = replace(run.profile.moe, trainable_layers=None, model=replace(run.profile.moe.model, moe_on="tokens"),
                  teacher_folds=0)
    profile = replace(run.profile, moe=moe)
    study = MoEStudy(run.tasks, run.scorers(progress=False), profile, run.cache, seed=0, progress=False)
    assert study.layer == 0 and not study.frozen_encoder
    assert not study.setup.reads_pooled(moe.model)
    assert study.inputs.states(study.old[0], "train").layer == 0   # token ids
    fitted = study.store.fit("UniMoE", replace(moe.model, n_experts=2, max_epochs=1))
    before = dict(study.setup.backbone.model.named_parameters())
    changed = [n for n, p in fitted.model.encoder.named_parameters() if not torch.equal(p.cpu(), before[n].cpu())]
    assert changed, "the encoder did not train"
    reloaded = study.store.cached("UniMoE", fitted.settings, study.old,
                                  study.store.cache_inputs("UniMoE", fitted.settings, study.old, None), lambda: None)
    assert reloaded.from_cache
    for name, p in fitted.model.named_parameters():
        assert torch.equal(p, dict(reloaded.model.named_parameters())[name]), name
    p = study.evaluation.proba(fitted, study.old[0], "test")
    assert p.shape == (len(study.tasks[study.old[0]].test), study.tasks[study.old[0]].n_labels)
    # the chapter's MTL: the frozen search's model, then every encoder layer fine-tuned with it
    mtl = study.model("MTL")
    assert study.setup.encoder_label == "whole encoder trained" and mtl.model.layer == 0
    assert mtl.settings.max_epochs == moe.encoder_epochs and study.selection.model("MTL").model.layer == 2
    p = study.proba(mtl, study.old[0], "test")
    assert p.shape == (len(study.tasks[study.old[0]].test), study.tasks[study.old[0]].n_labels)
