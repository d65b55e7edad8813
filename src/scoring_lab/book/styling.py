"""How tables look on the book's pages (pandas Stylers); the numbers themselves come from elsewhere."""
from __future__ import annotations

import pandas as pd


def styled_table(df: pd.DataFrame, *, wide: tuple[str, ...] = (), nowrap: tuple[str, ...] = (),
                 precision: int = 3, index: bool = False):
    """A Styler: numbers to ``precision`` digits (integers with thousands separators), text columns
    in ``wide`` wrapped in a broad column, columns in ``nowrap`` kept on one line."""
    sty = df.style.format(precision=precision, thousands=",")
    if not index:
        sty = sty.hide(axis="index")
    for col in wide:
        if col in df.columns:
            sty = sty.set_properties(subset=[col], **{"min-width": "28em", "white-space": "normal", "text-align": "left"})
    for col in nowrap:
        if col in df.columns:
            sty = sty.set_properties(subset=[col], **{"white-space": "nowrap", "text-align": "left"})
    return sty.set_table_styles([{"selector": "td, th", "props": [("padding", "2px 8px"), ("vertical-align", "top")]}])
