"""Tests of gradlib.report: orders of magnitude are the nearest power of ten on the log scale, table cells and
the Markdown norm table show every value the same way, facts print aligned, profiles read as words."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gradlib import report
from gradlib.exp_norms import NormComparison
from gradlib.results import DepthProfile


@pytest.mark.parametrize("x, expected", [
    (6.6e-3, "1e-02"), (7.6e-9, "1e-08"), (47, "1e+02"), (2.2e-12, "1e-12"), (1.0, "1e+00"), (3.0, "1e+00"),
    (3.2, "1e+01"), (0.031, "1e-02"), (0.032, "1e-01"), (999.0, "1e+03"), (1e100, "1e+100"), (-47.0, "-1e+02"),
    (0.0, "0"), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"), (np.float32(6.6e-3), "1e-02"),
])
def test_order_of_magnitude_is_the_nearest_power_of_ten_on_the_log_scale(x, expected):
    assert report.order_of_magnitude(x) == expected


def test_order_of_magnitude_rounds_on_the_log_scale_not_the_linear_one():
    # the midpoint between 1e-3 and 1e-2 on a log axis is √10·1e-3 ≈ 3.16e-3 (not 5.5e-3, the linear one)
    assert report.order_of_magnitude(3.1e-3) == "1e-03"
    assert report.order_of_magnitude(3.2e-3) == "1e-02"
    assert report.order_of_magnitude(5e-3) == "1e-02"  # nearer 1e-3 linearly, nearer 1e-2 on the log scale
    for k in range(-20, 21):
        assert report.order_of_magnitude(10.0 ** k) == f"1e{k:+03d}"


@pytest.mark.parametrize("value, digits, expected", [
    (0.61234, 2, "0.61"), (0.61234, 3, "0.612"), (0.0, 2, "0"), (1.234e-7, 2, "1.2e-07"), (12345.0, 2, "1.2e+04"),
    ("fails: x must hold at least 2 tokens", 2, "fails"), ("n/a", 2, "n/a"), (np.float32(0.5), 2, "0.5"),
])
def test_table_cell(value, digits, expected):
    assert report.table_cell(value, digits) == expected


def test_table_cell_rejects_a_bad_digits():
    for digits in (0, -1, 1.5):
        with pytest.raises(ValueError, match="digits"):
            report.table_cell(0.5, digits)


def test_norm_table_markdown_has_one_line_per_test_and_shows_failures():
    result = NormComparison(changes={
        "batch of one token (training)": {"batch": "fails: x must hold at least 2 tokens", "layer": 0.0, "rms": 0.0},
        "padding": {"batch": 0.61234, "layer": 0.0, "rms": 1.234e-7},
    })
    text = report.norm_table_markdown(result)
    assert text.splitlines() == [
        "| max abs change of the output | BatchNorm | LayerNorm | RMSNorm |",
        "|---|---:|---:|---:|",
        "| batch of one token (training) | fails | 0 | 0 |",
        "| padding | 0.61 | 0 | 1.2e-07 |",
    ]
    assert "| padding | 0.612 | 0 | 1.23e-07 |" in report.norm_table_markdown(result, digits=3)
    only = NormComparison(changes={"padding": {"layer": 0.0, "rms": 0.5}})
    assert report.norm_table_markdown(only).splitlines() == [
        "| max abs change of the output | LayerNorm | RMSNorm |", "|---|---:|---:|", "| padding | 0 | 0.5 |"]


def test_print_facts_aligns_one_fact_per_line(capsys):
    report.print_facts({"short": True, "a longer fact": False})
    out = capsys.readouterr().out.splitlines()
    assert out == ["short          True", "a longer fact  False"]
    report.print_facts({"x": True}, width=4)
    assert capsys.readouterr().out == "x    True\n"


def _profile(grad_norms, exploded_at=None):
    g = np.asarray(grad_norms, dtype=float)
    return DepthProfile(key="k", label="k", role="baseline", layer=np.arange(1, len(g) + 1), grad_norms=g,
                        param_norms=g, exploded_at=exploded_at)


def test_profile_verdict_reads_the_first_over_last_ratio_or_where_it_exploded():
    assert report.profile_verdict(_profile([0.0066, 0.1, 1.0])) == "first/last = 0.0066 (vanishing)"
    assert report.profile_verdict(_profile([0.0066, 0.1, 1.0]), short=True) == "first/last = 0.0066"
    assert report.profile_verdict(_profile([50.0, 5.0, 1.0])) == "first/last = 50 (exploding)"
    assert report.profile_verdict(_profile([0.5, 1.0])) == "first/last = 0.5 (steady)"
    assert report.profile_verdict(_profile([np.inf, np.nan, 1.0], exploded_at=1)) == "exploded (inf/NaN) at layer 2"
