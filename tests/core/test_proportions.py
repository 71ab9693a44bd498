"""Wilson and Newcombe intervals against the published values (Newcombe 1998, Statistics in Medicine 17: 857-872 and
873-890: the single-proportion examples and Table II's examples for method 10)."""

import pytest

from core.proportions import newcombe_difference, wilson_interval


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_the_published_intervals(successes, total, low, high):
    assert wilson_interval(successes, total) == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
    ],
)
def test_newcombe_matches_table_two(a, m, b, n, low, high):
    interval = newcombe_difference(a, m, b, n)
    assert interval.difference == pytest.approx(a / m - b / n)
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=5e-5)


def test_an_empty_group_gives_no_interval():
    assert newcombe_difference(3, 10, 0, 0).difference is None
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert newcombe_difference(9, 10, 3, 10).excludes_zero and not newcombe_difference(5, 56, 0, 29).excludes_zero
