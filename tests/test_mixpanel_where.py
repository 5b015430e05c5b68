"""The Mixpanel stand-in reads `where` as Mixpanel documents it, so a regressed form fails a test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.where import compile_where, created_ranges, created_seconds, evaluate

CREATED = {"$created": "2026-11-28T08:30:00"}  # 1795854600 in Unix seconds


@pytest.mark.parametrize(
    "expression",
    [
        'properties["$created"] >= "2026-11-28T08:00:00" and properties["$created"] < "2026-11-28T09:00:00"',
        'properties["$created"] > "2026-01-01"',
        'properties["$created"] < 1795856400',
    ],
)
def test_a_bare_string_or_mixed_comparison_matches_nothing(expression: str) -> None:
    # Ordering is documented for numbers (and dates); anything else is undefined, and undefined is false.
    assert not evaluate(expression, CREATED)


def test_unix_seconds_bounds_are_utc() -> None:
    expression = (
        'datetime(1795852800) <= properties["$created"] and properties["$created"] < datetime(1795856400)'
    )
    assert evaluate(expression, CREATED)
    assert not evaluate(expression, {"$created": "2026-11-28T09:00:00"})
    assert evaluate(expression, {"$created": "2026-11-28T08:00:00"})


def test_a_datetime_string_literal_is_read_in_the_projects_timezone() -> None:
    expression = 'properties["$created"] >= datetime("2026-11-28T08:00:00")'
    assert evaluate(expression, CREATED, project_timezone="UTC")
    # In Los Angeles that literal is 16:00 UTC: the 08:30 UTC profile no longer matches.
    assert not evaluate(expression, CREATED, project_timezone="America/Los_Angeles")


def test_defined_not_and_or_and_parentheses() -> None:
    assert evaluate('defined(properties["$created"])', CREATED)
    assert not evaluate('defined(properties["$created"])', {})
    assert evaluate('not defined(properties["$email"]) and (1 < 2 or 2 < 1)', CREATED)
    assert not evaluate('properties["$created"] < datetime(1)', {})


@pytest.mark.parametrize("expression", ['properties["$created"] <', "datetime(", "1 < 2 )", "bogus(1)"])
def test_an_unreadable_expression_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="where"):
        compile_where(expression)


@given(
    created=st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=20),
        st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
    ),
    bounds=st.lists(
        st.tuples(st.integers(-(2**34), 2**34), st.integers(-(2**34), 2**34)), min_size=1, max_size=3
    ),
)
def test_the_quick_range_path_answers_as_the_evaluator_does(
    created: object, bounds: list[tuple[int, int]]
) -> None:
    expression = " or ".join(
        f'(datetime({a}) <= properties["$created"] and properties["$created"] < datetime({b}))'
        for a, b in bounds
    )
    found = created_ranges(expression)
    assert found is not None
    name, ranges = found
    assert name == "$created"
    properties = {} if created is None else {"$created": created}
    seconds = created_seconds(properties, name)
    quick = seconds is not None and any(start <= seconds < end for start, end in ranges)
    assert quick == evaluate(expression, properties)
