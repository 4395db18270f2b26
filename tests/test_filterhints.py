"""Why a results filter matched nothing (web/filterhints.py), told from the newest rows."""

import pytest

from web import filterhints
from web.filters import FilterError

ROWS = [{"title": "A Light in the Attic", "price": "£51.77", "stock": {"n": 3}, "ok": True},
        {"title": "Tipping the Velvet", "price": "£53.74", "stock": {"n": 0}, "ok": False}]
COLUMNS = ["title", "price", "stock.n", "ok"]


def hints(*texts):
    return filterhints.hints(list(texts), ROWS, COLUMNS)


def test_a_field_no_row_has_is_named_with_the_fields_there_are():
    [hint] = hints("prcie > 10")
    assert "has a field 'prcie'" in hint and "title, price, stock.n, ok" in hint


def test_a_number_against_text_suggests_quoting():
    [hint] = hints("price > 10")
    assert "'price' holds text (e.g. '£51.77')" in hint and "compares numbers" in hint
    assert 'quote a value' in hint


def test_filters_that_fit_the_rows_get_no_hint():
    """Types that match, dotted paths, contains, exists and = with a number (which
    also matches its text) explain nothing: no rows is then simply the answer."""
    assert hints("stock.n > 5", "title ~ zzz", "title ?", "price = 10", "ok = true",
                 "title != x", "") == []


def test_booleans_against_text_are_named():
    [hint] = hints("title = true")
    assert "'title' holds text" in hint and "compares true/false" in hint


def test_an_unreadable_filter_is_still_an_error():
    with pytest.raises(FilterError):
        hints("just words")
