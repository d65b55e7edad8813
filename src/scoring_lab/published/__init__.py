"""Figures transcribed from the papers, for comparison tables labelled as the papers' own.

Each paper numbers the nine tasks its own way; :func:`task_numbering` holds each
paper's task table as data, and per-task figures are stored under the paper's
own numbers and mapped to task names through it.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd
import yaml


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    return yaml.safe_load((resources.files(__name__) / f"{name}.yaml").read_text(encoding="utf-8"))


def numberings() -> list[str]:
    """The papers whose task numbering is known (keys of ``task_numbering.yaml``)."""
    return list(_load("task_numbering"))


def task_numbering(paper: str) -> tuple[pd.DataFrame, str]:
    """(the paper's task table: number, task, n_labels, n_train, n_test; its source)."""
    data = _load("task_numbering")
    if paper not in data:
        raise KeyError(f"no task numbering for paper {paper!r}; known: {', '.join(data)}")
    d = data[paper]
    return pd.DataFrame(d["rows"], columns=d["columns"]), d["source"]


def individual_scorers() -> tuple[pd.DataFrame, str]:
    """(per-task table with columns task, number, kappa, macro_f1, micro_f1, per_label_accuracy; its source).

    ``number`` is the paper's own task number; ``task`` the name it maps to.
    """
    d = _load("individual_scorers")["per_task"]
    table = pd.DataFrame(d["rows"], columns=d["columns"])
    numbering, _ = task_numbering(d["numbering"])
    names = numbering.set_index("number")["task"]
    unknown = sorted(set(table["number"]) - set(names.index))
    if unknown:
        raise ValueError(f"individual_scorers.yaml: task numbers {unknown} are not in the "
                         f"{d['numbering']!r} numbering")
    table.insert(0, "task", table["number"].map(names))
    return table, d["source"]


def individual_average_tasks_1_7() -> dict:
    """The UniMoE paper's printed 'Average' over its Tasks 1-7 for the Individual scorers ({metric: value})."""
    return dict(_load("individual_scorers")["per_task"]["average_tasks_1_7"])


def pre_merge_weighted_mean() -> tuple[dict, str]:
    """({metric: value} weighted over nine tasks; its source)."""
    d = _load("individual_scorers")["weighted_mean"]
    return dict(d["values"]), d["source"]


def kd_table2() -> tuple[pd.DataFrame, str]:
    """(the KD paper's Table 2, long: role, model, metric (accuracy | f1), mean, sd; its source)."""
    d = _load("kd_table2")
    parts = [pd.DataFrame(d[m]["rows"], columns=d[m]["columns"]).assign(metric=m) for m in ("accuracy", "f1")]
    return pd.concat(parts, ignore_index=True)[["role", "model", "metric", "mean", "sd"]], d["source"]


def kd_sets() -> pd.DataFrame:
    """The KD paper's Table 1: role, responses, classes, teacher."""
    d = _load("kd_table2")["sets"]
    return pd.DataFrame(d["rows"], columns=d["columns"])


def kd_sizes() -> dict:
    """The sizes and ratios the KD paper states (parameters, the 4,000x and 10x claims, accuracy gains)."""
    return dict(_load("kd_table2")["sizes"])


def gw_plans() -> dict[str, list[list[str]]]:
    """The GW paper's merge plans (Table 3) by method, in task names ({method: [[task, ...], ...]})."""
    d = _load("gw_merging")
    numbering, _ = task_numbering(d["numbering"])
    names = numbering.set_index("number")["task"]
    out = {}
    for method, groups in d["plans"].items():
        unknown = sorted({n for g in groups for n in g} - set(names.index))
        if unknown:
            raise ValueError(f"gw_merging.yaml: plan {method!r} names task numbers {unknown} not in the paper's table")
        out[method] = [[names[n] for n in g] for g in groups]
    return out


def gw_plan_numbers() -> dict[str, list[list[int]]]:
    """The GW paper's merge plans in its own task numbers, as printed."""
    return {m: [list(g) for g in groups] for m, groups in _load("gw_merging")["plans"].items()}


def gw_table3() -> tuple[pd.DataFrame, str]:
    """(the GW paper's Table 3: method, micro_f1, macro_f1, exact_match, per_label_accuracy; its source)."""
    d = _load("gw_merging")
    return pd.DataFrame(d["table3"]["rows"], columns=d["table3"]["columns"]), d["source"]


def gw_table4() -> tuple[pd.DataFrame, str]:
    """(the GW paper's Table 4, long: metric, method_a, method_b, t, p; its source)."""
    d = _load("gw_merging")
    return pd.DataFrame(d["table4"]["rows"], columns=d["table4"]["columns"]), d["source"]


def gw_storage() -> dict:
    """The GW paper's storage statements: model_mb (one BERT model), group_factor (its largest saving)."""
    return dict(_load("gw_merging")["storage"])


# ---- the UniMoE paper (unimoe.yaml) ---------------------------------------------------
UNIMOE_METRICS = ("kappa", "macro_f1", "micro_f1", "per_label_accuracy")


def _task_names(numbering: str, numbers, where: str) -> pd.Series:
    names = task_numbering(numbering)[0].set_index("number")["task"]
    unknown = sorted(set(int(n) for n in numbers) - set(names.index))
    if unknown:
        raise ValueError(f"{where}: task numbers {unknown} are not in the {numbering!r} numbering")
    return names


def _per_task_long(block: dict, numbering: str, where: str) -> pd.DataFrame:
    """Rows [method, metric, <task numbers...>, (average)] -> long: method, metric, number, task, value."""
    wide = pd.DataFrame(block["rows"], columns=[str(c) for c in block["columns"]])
    numbers = [c for c in wide.columns if c.isdigit()]
    names = _task_names(numbering, numbers, where)
    long = wide.melt(id_vars=["method", "metric"], value_vars=numbers, var_name="number", value_name="value")
    long["number"] = long["number"].astype(int)
    long.insert(2, "task", long["number"].map(names))
    return long


def unimoe_table3() -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(the UniMoE paper's Table 3, long: method, metric, task, number, value, for Individual, MTL, UniMoE
    and UniMoE-Guided on its Tasks 1-7; the printed 'Average' column: method, metric, value; its source)."""
    d = _load("unimoe")
    long = _per_task_long(d["table3"], d["numbering"], "unimoe.yaml table3")
    individual, _ = individual_scorers()
    individual = individual[individual["number"] <= 7].melt(id_vars=["task", "number"], value_vars=list(UNIMOE_METRICS),
                                                             var_name="metric", value_name="value")
    individual.insert(0, "method", "Individual")
    long = pd.concat([individual[long.columns], long], ignore_index=True)
    wide = pd.DataFrame(d["table3"]["rows"], columns=[str(c) for c in d["table3"]["columns"]])
    average = pd.concat([pd.DataFrame([{"method": "Individual", "metric": m, "value": v}
                                       for m, v in individual_average_tasks_1_7().items()]),
                         wide[["method", "metric", "average"]].rename(columns={"average": "value"})],
                        ignore_index=True)
    return long, average, d["table3"]["source"]


def unimoe_table4() -> tuple[pd.DataFrame, str]:
    """(the UniMoE paper's Table 4: model, params, disk_mb, relative_size, latency_ms; its source)."""
    d = _load("unimoe")["table4"]
    return pd.DataFrame(d["rows"], columns=d["columns"]), d["source"]


def unimoe_table5() -> tuple[pd.DataFrame, str]:
    """(the UniMoE paper's Table 5, long: method, metric, task, number, value, for Individual, MTL and
    UniMoE-Guided on its held-out Tasks 8-9; its source)."""
    d = _load("unimoe")
    long = _per_task_long(d["table5"], d["numbering"], "unimoe.yaml table5")
    individual, _ = individual_scorers()
    individual = individual[individual["number"] >= 8].melt(id_vars=["task", "number"], value_vars=list(UNIMOE_METRICS),
                                                             var_name="metric", value_name="value")
    individual.insert(0, "method", "Individual")
    return pd.concat([individual[long.columns], long], ignore_index=True), d["table5"]["source"]


def unimoe_forgetting() -> tuple[pd.DataFrame, str]:
    """(UniMoE-Guided's average on Tasks 1-7 before and after adaptation: metric, before, after; its source)."""
    d = _load("unimoe")["forgetting"]
    return pd.DataFrame(d["rows"], columns=d["columns"]), d["source"]


def unimoe_structure() -> dict:
    """The UniMoE paper's parameter counts (encoder, MoE, heads) and its adaptation's trainable share."""
    return dict(_load("unimoe")["structure"])


def unimoe_search_grid() -> dict:
    """The UniMoE paper's hyper-parameter grid: n_experts, lambda_lb, lambda_kd."""
    return {k: list(v) for k, v in _load("unimoe")["search"].items() if k != "source"}


def unimoe_expert_usage() -> dict:
    """The shares of expert usage the UniMoE paper's text quotes (Fig. 3): n_experts and examples
    [(task, number, expert, share), ...] with task names."""
    d = _load("unimoe")
    names = _task_names(d["numbering"], [e[0] for e in d["expert_usage"]["examples"]], "unimoe.yaml expert_usage")
    return {"n_experts": int(d["expert_usage"]["n_experts"]), "source": d["expert_usage"]["source"],
            "examples": [(names[n], int(n), int(e), float(s)) for n, e, s in d["expert_usage"]["examples"]]}


def merge3_table(name: str) -> tuple[pd.DataFrame, str]:
    """(one of the MERGE3 paper's tables ``table1``, ``table6``, ``table7``; its source)."""
    d = _load("merge3")
    if name not in ("table1", "table6", "table7"):
        raise KeyError(f"no MERGE3 table {name!r}; known: table1, table6, table7")
    return pd.DataFrame(d[name]["rows"], columns=d[name]["columns"]), d[name]["source"]


def merge3_figures() -> dict:
    """The MERGE3 paper's fitness TFLOPs (full, merge3, ratio) and search settings, with their sources."""
    d = _load("merge3")
    return {"fitness_tflops": dict(d["fitness_tflops"]), "search": dict(d["search"])}
