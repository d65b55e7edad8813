"""Figures. Each function returns a matplotlib Figure with a title and axis labels."""
from __future__ import annotations

import matplotlib.pyplot as plt
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
