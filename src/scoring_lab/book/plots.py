"""Figures. Each function returns a matplotlib Figure with a title and axis labels."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def prevalence_heatmap(prevalence: pd.DataFrame, title: str = "Label prevalence in the training split"):
    """Heatmap of a (tasks x labels) prevalence table; blank cells are labels a task does not have."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * prevalence.shape[1], 0.9 + 0.45 * prevalence.shape[0]))
    sns.heatmap(prevalence, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis",
                cbar_kws={"label": "share of responses"}, ax=ax, linewidths=0.5, linecolor="white")
    ax.set_title(title)
    ax.set_xlabel("rubric dimension")
    ax.set_ylabel("task")
    fig.tight_layout()
    return fig


def class_distribution(scores: pd.DataFrame, title: str = "Holistic score distribution (train)"):
    """Stacked bars of a (tasks x classes) share table."""
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.4 * len(scores)))
    scores.plot.barh(stacked=True, ax=ax, colormap="viridis", width=0.8)
    ax.set_title(title)
    ax.set_xlabel("share of responses")
    ax.set_ylabel("task")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(title="score", bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def training_curves(curves: pd.DataFrame, score_label: str = "validation micro-F1", loss_label: str = "BCE"):
    """Two panels over epochs, one line per task: validation loss, and the validation score."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    sns.lineplot(data=curves, x="epoch", y="val_loss", hue="task", marker="o", ax=axes[0], legend=False)
    sns.lineplot(data=curves, x="epoch", y="val_score", hue="task", marker="o", ax=axes[1])
    axes[0].set_title(f"Validation loss ({loss_label}) per epoch")
    axes[0].set_ylabel("validation loss")
    axes[1].set_title(f"{score_label.capitalize()} per epoch")
    axes[1].set_ylabel(score_label)
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[1].legend(title="task", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def ours_vs_paper(comparison: pd.DataFrame, metric: str = "micro_f1", title: str | None = None):
    """Paired horizontal bars per task: this run's test metric and the paper's published one."""
    long = pd.concat([
        comparison[["task", metric]].rename(columns={metric: "value"}).assign(source="this book (test split)"),
        comparison[["task", f"{metric} (paper)"]].rename(columns={f"{metric} (paper)": "value"})
        .assign(source="paper (published)"),
    ])
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.55 * comparison.shape[0]))
    sns.barplot(data=long, y="task", x="value", hue="source", ax=ax, orient="h")
    ax.set_xlim(0, 1)
    ax.set_xlabel(metric.replace("_", " "))
    ax.set_ylabel("task")
    ax.set_title(title or f"Per-task {metric.replace('_', ' ')}: this book vs the paper")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", title="source")
    fig.tight_layout()
    return fig


def model_comparison(table: pd.DataFrame, models: list[str], metric: str, label: str, title: str):
    """Horizontal bars per task (the ``weighted mean`` row last), one bar per model, of the
    columns ``<metric> (<model>)`` of a :func:`scoring_lab.models.per_task.side_by_side` table."""
    long = pd.concat([table[["task", f"{metric} ({m})"]].rename(columns={f"{metric} ({m})": "value"}).assign(model=m)
                      for m in models])
    return _horizontal_bars(long, "task", "value", "model", (min(0.0, float(long["value"].min())), 1),
                            f"{label} (test split)", "task", title, 0.6 + 0.32 * len(models) * table.shape[0])


def _horizontal_bars(data: pd.DataFrame, y: str, x: str, hue: str, xlim: tuple, xlabel: str, ylabel: str,
                     title: str, height: float):
    """Horizontal bars of ``x`` per ``y``, one colour per ``hue`` (its legend outside, right)."""
    fig, ax = plt.subplots(figsize=(8, height))
    sns.barplot(data=data, y=y, x=x, hue=hue, ax=ax, orient="h")
    ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", title=hue)
    fig.tight_layout()
    return fig


def not_applicable(title: str):
    """A small empty figure whose title says why a figure does not apply to this run's data."""
    fig, ax = plt.subplots(figsize=(6, 1))
    ax.axis("off")
    ax.set_title(title)
    return fig


def lambda_sensitivity(sweep: pd.DataFrame, references: dict[str, float] | None = None,
                       papers_range: tuple[float, float] | None = None, title: str | None = None,
                       chosen: tuple[float, float] | None = None):
    """Test accuracy against lambda, mean ± sd over seeds, one line per kind of target and temperature;
    ``sweep`` has columns lam, seed, accuracy and, where it sweeps more than lambda, targets and
    temperature (the lambda = 0 students start every line). ``references``: label -> a baseline's mean test
    accuracy, drawn as horizontal lines; ``papers_range`` shaded; ``chosen`` (lambda, tau) circled."""
    fig, ax = plt.subplots(figsize=(8.5, 4.4))
    sweep = sweep.assign(targets=sweep.get("targets", "in-sample"), temperature=sweep.get("temperature", 1.0))
    zero = sweep[sweep["lam"] == 0]
    lines = sweep[sweep["lam"] > 0].groupby(["targets", "temperature"], sort=False)
    for (how, tau), rows in lines:
        g = pd.concat([zero, rows]).groupby("lam")["accuracy"]
        m, sd = g.mean(), g.std()
        label = ("teacher's targets" if how == "in-sample" else "generator's targets (positive control)" if
                 how == "oracle" else f"{how} targets") + f", tau = {tau:g}"
        ax.errorbar(m.index, m.values, yerr=sd.values, marker="o" if how == "in-sample" else "^", capsize=3,
                    linestyle="-" if how == "in-sample" else "--", label=label)
    if chosen is not None:
        rows = sweep[(sweep["lam"] == chosen[0]) & (sweep["temperature"] == chosen[1]) &
                     (sweep["targets"] == "in-sample")]
        if len(rows):
            ax.plot([chosen[0]], [rows["accuracy"].mean()], marker="o", markersize=14, markerfacecolor="none",
                    markeredgecolor="black", linestyle="none", label="chosen on validation")
    for (name, value), style in zip((references or {}).items(), ("--", ":", "-.", (0, (5, 1)))):
        ax.axhline(value, linestyle=style, color="grey", label=f"{name}, test")
    if papers_range:
        ax.axvspan(*papers_range, color="orange", alpha=0.15, label="the paper's range")
    ax.set_xscale("symlog", linthresh=0.02)
    ax.set_xlabel("lambda (weight of the teacher term, Eq. 2; symmetric log scale)")
    ax.set_ylabel("test accuracy (mean ± sd over seeds)")
    ax.set_title(title or "Sensitivity of the KD student to lambda")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def size_against_accuracy(table: pd.DataFrame, title: str = "Parameters against test accuracy"):
    """Scatter of ``table`` (columns model, parameters, accuracy): parameters on a log axis."""
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.scatterplot(data=table, x="parameters", y="accuracy", hue="model", s=90, ax=ax)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.set_title(title)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def similarity_heatmaps(matrices: dict[str, pd.DataFrame], title: str = "Task similarity"):
    """One annotated heatmap per (T x T) similarity matrix, side by side (the GW paper's Fig. 3)."""
    n = len(matrices)
    size = max(m.shape[0] for m in matrices.values())
    fig, axes = plt.subplots(1, n, figsize=(0.9 + 0.62 * size * n, 1.6 + 0.5 * size), squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        sns.heatmap(m, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="magma", square=True, ax=ax,
                    cbar=ax is axes[0][-1], cbar_kws={"label": "similarity S"}, annot_kws={"size": 7})
        ax.set_title(name)
        ax.set_xlabel("task")
        ax.set_ylabel("task" if ax is axes[0][0] else "")
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def merge_performance(table: pd.DataFrame, metrics: dict[str, str], title: str = "Test performance by merge plan"):
    """Grouped horizontal bars: one group per method (rows of ``table``), one bar per metric
    (``metrics``: column -> label), the GW paper's Fig. 4."""
    long = table.melt(id_vars="method", value_vars=list(metrics), var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(metrics)
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.55 * len(table)))
    sns.barplot(data=long, y="method", x="value", hue="metric", ax=ax, orient="h")
    ax.set_xlim(0, 1)
    ax.set_xlabel("test-size-weighted mean over tasks (test split)")
    ax.set_ylabel("")
    ax.set_title(title)
    ax.legend(title="metric", bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def score_distribution(scores, marks: dict[str, float], title: str, xlabel: str):
    """A histogram of ``scores`` with vertical lines at ``marks`` (label -> value)."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.hist(scores, bins=40, color="#9aa9c4")
    for i, (label, value) in enumerate(marks.items()):
        ax.axvline(value, color=sns.color_palette()[i % 10], lw=2, label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of plans")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def expert_usage_heatmap(usage: pd.DataFrame, families: dict[str, str] | None = None,
                         title: str = "Share of gate weight per expert (test split)"):
    """Heatmap of a (tasks x experts) usage table (rows sum to 1); with ``families``, each row's label
    names its task's planted family on a second line."""
    shown = usage.copy()
    if families:
        shown.index = [f"{t}\n({families[t].replace('_', ' ')})" if t in families else t for t in shown.index]
    fig, ax = plt.subplots(figsize=(4.5 + 1.3 * shown.shape[1], 1.0 + 0.75 * shown.shape[0]))
    sns.heatmap(shown, annot=True, fmt=".1%", vmin=0, vmax=max(0.5, float(shown.to_numpy().max())), cmap="mako_r",
                cbar_kws={"label": "mean gate weight"}, ax=ax, linewidths=0.5, linecolor="white")
    ax.set_title(title)
    ax.set_xlabel(f"expert (uniform use: {1 / shown.shape[1]:.1%} each)")
    ax.set_ylabel("task (planted family)" if families else "task")
    ax.tick_params(axis="y", labelsize="small", rotation=0)
    fig.tight_layout()
    return fig


def method_averages(table: pd.DataFrame, title: str = "Average over the training tasks (test split)"):
    """Grouped bars: one group per metric, one bar per method and source (``table``: metric, method,
    ours, paper; the paper's bars hatched)."""
    long = pd.concat([table.assign(value=table["ours"], source="this book"),
                      table.assign(value=table["paper"], source="paper (published)")]).dropna(subset=["value"])
    long["bar"] = long["method"] + " · " + long["source"]
    fig, axes = plt.subplots(1, long["metric"].nunique(), figsize=(13, 3.8), sharey=False)
    for ax, (metric, part) in zip(axes, long.groupby("metric", sort=False)):
        sns.barplot(data=part, x="method", y="value", hue="source", ax=ax)
        low = max(0.0, float(part["value"].min()) - 0.1)
        ax.set_ylim(low, 1.0)
        ax.set_title(metric.replace("_", " "))
        ax.set_xlabel("")
        ax.set_ylabel("score" if ax is axes[0] else "")
        ax.tick_params(axis="x", rotation=35)
        if ax is not axes[-1]:
            ax.get_legend().remove()
    axes[-1].legend(title="", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def encoder_columns(freezing: pd.DataFrame, title: str, metric: str = "kappa"):
    """Horizontal bars of ``metric`` per method, one colour per encoder setting (``freezing``: method, encoder,
    ``metric``; the MoE chapter's frozen and trained columns, its per-task models under encoder "-")."""
    xlim = (max(0.0, float(freezing[metric].min()) - 0.1), min(1.0, float(freezing[metric].max()) + 0.05))
    return _horizontal_bars(freezing, "method", metric, "encoder", xlim, f"average {metric} (test split)", "", title,
                            0.5 + 0.45 * len(freezing))


def estimator_errors(errors: pd.DataFrame, value: str = "abs_error", ylabel: str = "absolute error of the accuracy "
                     "estimate", title: str = "Performance estimators on held-out merged models"):
    """Mean ± sd of ``value`` against subset size, one line per estimator (the MERGE3 paper's Fig. 3);
    ``errors`` has columns estimator, subset_size and ``value``."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for (name, part), marker in zip(errors.groupby("estimator", sort=True), "osD^vP*X"):
        g = part.groupby("subset_size")[value]
        ax.errorbar(g.mean().index, g.mean().values, yerr=g.std().values, marker=marker, capsize=3, label=name)
    ax.set_xscale("log")
    sizes = sorted(errors["subset_size"].unique())
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("items in the subset (log scale)")
    ax.set_ylabel(f"{ylabel} (mean ± sd)")
    ax.set_title(title)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def evolution_fitness(evolution: pd.DataFrame, title: str = "Fitness the searches saw against the true fitness"):
    """Per search (a panel each): estimated against true fitness of every evaluation, coloured by generation,
    with the diagonal; ``evolution`` has run, generation, estimated_fitness, true_fitness."""
    runs = list(dict.fromkeys(evolution["run"]))
    fig, axes = plt.subplots(1, len(runs), figsize=(4.3 * len(runs), 4), sharex=True, sharey=True, squeeze=False)
    low = float(evolution[["estimated_fitness", "true_fitness"]].min().min()) - 0.02
    high = float(evolution[["estimated_fitness", "true_fitness"]].max().max()) + 0.02
    for ax, run in zip(axes[0], runs):
        part = evolution[evolution["run"] == run]
        points = ax.scatter(part["true_fitness"], part["estimated_fitness"], c=part["generation"], cmap="viridis", s=22)
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        ax.set_title(run, fontsize="medium")
        ax.set_xlabel("true fitness (all fitness items)")
    axes[0][0].set_ylabel("fitness the search saw")
    fig.colorbar(points, ax=axes[0].tolist(), label="generation")
    fig.suptitle(title)
    return fig


def pareto_front(pareto: pd.DataFrame, tasks: list[str], references: dict[str, dict[str, float]] | None = None,
                 title: str = "NSGA-II's final Pareto set"):
    """One panel per pair of tasks: the Pareto set's estimated (hollow) and true (filled) per-task fitness,
    joined by a line per member, and ``references`` (name -> {task: accuracy}) as crosses."""
    pairs = [(a, b) for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.3 * len(pairs), 4), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        for _, row in pareto.iterrows():   # each member: from what the search estimated to what it is
            ax.plot([row[f"estimated_{a}"], row[f"true_{a}"]], [row[f"estimated_{b}"], row[f"true_{b}"]],
                    color="grey", linewidth=0.6, alpha=0.6)
        ax.scatter(pareto[f"estimated_{a}"], pareto[f"estimated_{b}"], facecolors="none", edgecolors="C0",
                   label="Pareto set, estimated")
        ax.scatter(pareto[f"true_{a}"], pareto[f"true_{b}"], color="C0", label="Pareto set, true")
        for (name, acc), colour in zip((references or {}).items(), ("C1", "C2", "C3", "C4", "C5", "C6")):
            ax.scatter([acc[a]], [acc[b]], marker="x", s=60, color=colour, label=name)
        ax.set_xlabel(f"{a} accuracy")
        ax.set_ylabel(f"{b} accuracy")
    axes[0][-1].legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def premise_scatter(pairs: pd.DataFrame, correlations: pd.DataFrame, loss: str = "loss",
                    ylabel: str = "merge loss (validation)", title: str = "What predicts the loss of merging two tasks"):
    """One panel per predictor of ``correlations`` (predictor, rho, ci_low, ci_high): each task pair of
    ``pairs`` at (its closeness, its ``loss``), the panel titled with Spearman's rho and its interval."""
    names = list(correlations["predictor"])
    if not names:
        return not_applicable(f"{title}: too few tasks for a correlation over pairs")
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for ax, r in zip(axes.flat, correlations.itertuples()):
        ax.scatter(pairs[r.predictor], pairs[loss], s=18, color="#4c72b0", alpha=0.8)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(f"{r.predictor}\nrho {r.rho:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]", fontsize="small")
        ax.set_xlabel("closeness (similarity)", fontsize="small")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plan_ranks(table: pd.DataFrame, metric: str, label: str, title: str):
    """Each evaluated plan's test ``metric`` (``table``: method, kind, same_sizes_as_gw and the metric):
    random plans as a strip, bootstrap plans beside them, every named plan as a labelled line."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    kinds = {"random": (0, "#9aa9c4"), "bootstrap": (1, "#dd8452")}
    rng = np.random.default_rng(0)
    for kind, (y, colour) in kinds.items():
        v = table.loc[table["kind"] == kind, metric]
        ax.scatter(v, y + rng.uniform(-0.15, 0.15, len(v)), color=colour, s=22, label=f"{kind} plans ({len(v)})")
    named = table[~table["kind"].isin(list(kinds))]
    for i, r in enumerate(named.itertuples()):
        ax.axvline(getattr(r, metric), color=sns.color_palette()[i % 10], lw=1.6,
                   ls="-" if r.same_sizes_as_gw else ":", label=r.method + ("" if r.same_sizes_as_gw else
                                                                           " (other sizes)"))
    ax.set_yticks([0, 1], ["random, the GW plan's sizes", "bootstrap GW plans"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel(f"test {label} (every task, test-size-weighted)")
    ax.set_title(title)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize="x-small")
    fig.tight_layout()
    return fig


def subset_sweep(sweep: pd.DataFrame, title: str = "Fitness subset size: accuracy and cost"):
    """Two panels over the searches' fitness items per evaluation (log scale): the evolved merge's test
    accuracy, and full-data fitness's end-to-end cost over the search's (seconds and FLOPs); ``sweep`` has
    items, test_accuracy, end_to_end_seconds_ratio, end_to_end_flops_ratio, its first row the full-data search."""
    fig, (acc, cost) = plt.subplots(1, 2, figsize=(10, 4))
    full, part = sweep.iloc[0], sweep.iloc[1:]
    acc.plot(part["items"], part["test_accuracy"], marker="o", label="IRT-fitness GA")
    acc.axhline(full["test_accuracy"], color="grey", linestyle="--", label="full-data GA")
    acc.set_xlabel("fitness items per evaluation")
    acc.set_ylabel("test accuracy of the evolved merge")
    acc.legend(fontsize="small")
    cost.plot(part["items"], part["end_to_end_seconds_ratio"], marker="o", label="seconds")
    cost.plot(part["items"], part["end_to_end_flops_ratio"], marker="s", label="FLOPs")
    cost.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    cost.set_xlabel("fitness items per evaluation")
    cost.set_ylabel("full-data cost / this search's (end to end)")
    cost.legend(fontsize="small")
    for ax in (acc, cost):
        ax.set_xscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
