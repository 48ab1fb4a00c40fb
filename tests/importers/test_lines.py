"""A file is read line by line as the csv module would read it from StringIO."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from klimapuls.importers.table import first_line, physical_lines

_TEXT = st.text(alphabet=st.sampled_from(["a", "æ", ",", ";", '"', "\r", "\n", " "]))


@given(_TEXT)
def test_lines_and_records_are_the_ones_stringio_gives(text: str) -> None:
    assert list(physical_lines(text)) == list(io.StringIO(text, newline=""))
    try:
        expected = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return
    assert list(csv.reader(physical_lines(text))) == expected


@given(_TEXT)
def test_the_first_line_is_the_first_of_splitlines(text: str) -> None:
    # Over CR and LF only: splitlines also splits at other separators.
    assert first_line(text) == (text.splitlines() or [""])[0]
