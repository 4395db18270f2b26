"""The results browser's filters become one flat query whenever they can."""

import pytest

from web.filters import FilterError, parse


def test_filters_on_different_fields_make_one_flat_query():
    """Different fields share one query (nx-27017 scans everything for $and)."""
    assert parse(["price >= 10", "category = Poetry"]) == {
        "price": {"$gte": 10}, "category": "Poetry"}


def test_ranges_on_one_field_merge():
    """Two bounds of one field become one range condition."""
    assert parse(["price >= 10", "price < 20"]) == {"price": {"$gte": 10, "$lt": 20}}


def test_clashing_conditions_keep_their_and():
    """Two conditions that cannot share one field's condition stay an $and."""
    query = parse(["title ~ a", "title ~ b"])
    assert list(query) == ["$and"] and len(query["$and"]) == 2
    query = parse(["category = Poetry", "category != Travel"])
    assert list(query) == ["$and"]


def test_operators_never_come_from_the_user():
    """A `$` in a field name is refused before any query is made."""
    with pytest.raises(FilterError):
        parse(["$where = 1"])
