"""How tables look on the book's pages (pandas Stylers); the numbers themselves come from elsewhere.

Every table fits its page's content column (about 690 px at a 1280 px wide window, checked by
``tests/test_book_in_browser.py``) without a sideways scroll: number cells stay on one line and
narrow; text cells and headers wrap, between words where every word is short, and inside a long
word (``breaking_down_hydrogen_peroxide``) where one is not; the column that explains a row
(``wide``) keeps a readable minimum and takes most of the room left; a table of more than
ten columns, or of more than six holding text, is set smaller and tighter (:data:`DENSITY`).
"""
from __future__ import annotations

import re

import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

SHORT_WORDS = 16      # a text column whose words are all this short wraps only between words
# How crowded a table is sets its type size, cell padding and the minimum widths of a ``wide``
# column and of a column with long words: roomy up to 10 columns of which at most 6 hold text;
# compact up to 14; dense beyond.
DENSITY = {"roomy": ("90%", "2px 6px", "8em", "5em"), "compact": ("80%", "2px 4px", "6em", "4em"),
           "dense": ("75%", "2px 3px", "6em", "4em")}
_PARTS = re.compile(r"(?<=[_/])(?=\w)|(?<=[A-Za-z]\.)(?=[A-Za-z])")   # after _ or /, a dot between letters
NUMBER = {"white-space": "nowrap", "text-align": "right"}
TEXT = {"white-space": "normal", "text-align": "left"}
ONE_LINE = {"white-space": "nowrap", "text-align": "left"}


def _is_number(dtype) -> bool:
    return is_numeric_dtype(dtype) and not is_bool_dtype(dtype)


def density(df: pd.DataFrame, *, index: bool = False) -> str:
    """``roomy``, ``compact`` or ``dense`` (a key of :data:`DENSITY`), from the number of columns
    (with the index's when shown) and of those holding text."""
    n_columns = len(df.columns) + (df.index.nlevels if index else 0)
    n_text = sum(not _is_number(dtype) for dtype in df.dtypes) + (df.index.nlevels if index else 0)
    return "dense" if n_columns > 14 else "compact" if n_columns > 10 or n_text > 6 else "roomy"


def fitting_styles(crowding: str = "roomy") -> list[dict]:
    """``Styler.set_table_styles`` entries that keep a table inside its column: no wider than its
    container, type and padding by ``crowding`` (:func:`density`); a header may break inside a word
    (a long name over a column of numbers), a cell wraps between words unless
    :func:`column_styles` lets its column break inside them."""
    size, padding, *_ = DENSITY[crowding]
    return [{"selector": "", "props": [("max-width", "100%"), ("font-size", size), ("border-collapse", "collapse")]},
            {"selector": "td, th", "props": [("padding", padding), ("vertical-align", "top"),
                                             ("overflow-wrap", "normal")]},
            {"selector": "th", "props": [("text-align", "left"), ("overflow-wrap", "anywhere")]}]


def _longest_word(values: pd.Series) -> int:
    return max((len(word) for v in values.dropna().astype(str) for word in v.split()), default=0)


def _all_strings(values: pd.Series) -> bool:
    return values.map(lambda v: isinstance(v, str)).all()


def soft_breaks(text, longer_than: int = SHORT_WORDS):
    """``text`` with a line-break opportunity (``<wbr>``, invisible) after each ``_`` or ``/`` and
    each dot between letters of a word longer than ``longer_than``, so ``breaking_down_hydrogen_peroxide``
    wraps at its parts; anything but a string, or a string holding markup, is returned as it is."""
    if not isinstance(text, str) or "<" in text:
        return text
    return " ".join(_PARTS.sub("<wbr>", word) if len(word) > longer_than else word for word in text.split(" "))


def _header(label):
    return soft_breaks(label, longer_than=0)


def column_styles(df: pd.DataFrame, *, wide: tuple = (), nowrap: tuple = (), crowding: str = "roomy") -> list[dict]:
    """``set_table_styles`` entries per column, by position (``td.col<i>``, ``th.col<i>``, so
    repeated column labels are fine): numbers (not booleans) on one line, right-aligned, under a
    header that may break anywhere; text wraps between words, under a header that does too; a
    ``wide`` column, or one with words longer than :data:`SHORT_WORDS`, may also break inside a word
    and has a minimum width so it is never squeezed to a few letters (the wide one's is larger:
    it explains the row, and takes most of the room left anyway); ``nowrap`` ones stay on one line."""
    _, _, wide_min, long_min = DENSITY[crowding]
    rules = []
    for i, (col, dtype) in enumerate(df.dtypes.items()):
        if col in nowrap:
            props = ONE_LINE
        elif _is_number(dtype):
            props = NUMBER
        elif col in wide:
            props = {**TEXT, "overflow-wrap": "anywhere", "min-width": wide_min}
        elif _longest_word(df.iloc[:, i]) > SHORT_WORDS:
            props = {**TEXT, "overflow-wrap": "anywhere", "min-width": long_min}
        else:
            props = TEXT
        rules.append({"selector": f"td.col{i}", "props": list(props.items())})
        if not _is_number(dtype):
            rules.append({"selector": f"th.col{i}", "props": [("overflow-wrap", "normal")]})
    return rules


def styled_table(df: pd.DataFrame, *, wide: tuple[str, ...] = (), nowrap: tuple[str, ...] = (),
                 precision: int = 3, index: bool = False):
    """A Styler that fits the page: numbers to ``precision`` digits (integers with thousands
    separators) on one line, text wrapped; text columns in ``wide`` get a readable minimum width
    (and most of the room), columns in ``nowrap`` are kept on one line. Long words in headers and
    text cells wrap at their ``_``, ``/`` and dots (:func:`soft_breaks`)."""
    sty = df.style.format(precision=precision, thousands=",")
    if df.columns.nlevels == 1 and all(isinstance(col, str) for col in df.columns):
        sty = sty.format_index(_header, axis=1)   # headers at every part
    if df.columns.is_unique:   # only columns of strings: the others keep the number format
        text = [col for col in df.columns if col not in nowrap and _all_strings(df[col])]
        if text:
            sty = sty.format(soft_breaks, subset=text)
    if not index:
        sty = sty.hide(axis="index")
    crowding = density(df, index=index)
    return sty.set_table_styles(fitting_styles(crowding)
                                + column_styles(df, wide=wide, nowrap=nowrap, crowding=crowding))
