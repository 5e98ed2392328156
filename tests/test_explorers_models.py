"""gradlib.explorers_models: chapter 6's explorer computes what the experiments compute, from cached models, and
builds live and static (within budget, every control changing the frame)."""
from __future__ import annotations

import functools
import itertools
import json
import os
import re

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import ipywidgets  # noqa: E402,F401  (the live explorer needs it)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradlib import exp_encoder as E  # noqa: E402
from gradlib import explorers_models as X  # noqa: E402
from gradlib import figures as gf  # noqa: E402
from gradlib.explorer import Explorer  # noqa: E402
from gradlib.static import MAX_STATIC_BYTES, StaticExplorer  # noqa: E402

TINY = dict(width=8, heads=2, tokens=4, batch=1)


@pytest.mark.parametrize("architecture, position", [("gpt2", "post"), ("bert", "pre"), ("llama", "post")])
def test_encoder_compute_is_the_two_experiments_at_the_explorers_sizes(architecture, position):
    family, torch_stack = X.encoder_compute(4, position, architecture, **TINY)
    kw = dict(d_model=8, n_heads=2, batch=1, seq_len=4, seed=0)
    np.testing.assert_array_equal(family.grad_norms, E.family_profile(architecture, 4, **kw).grad_norms)
    np.testing.assert_array_equal(torch_stack.grad_norms, E.torch_profile(position, 4, **kw).grad_norms)
    assert family.grad_norms[-1] == torch_stack.grad_norms[-1] == 1.0


def test_encoder_compute_builds_each_model_once():
    X.encoder_compute(6, "pre", "bert", seed=7, **TINY)  # a seed no other test uses: nothing cached yet
    built = X._model.cache_info().misses, X._stack.cache_info().misses
    X.encoder_compute(6, "post", "bert", seed=7, **TINY)  # a new position: a new stack, the same BERT
    X.encoder_compute(4, "pre", "bert", seed=7, **TINY)  # a new depth: a new BERT, the same (deeper) stack
    X.encoder_compute(4, "pre", "bert", seed=7, **TINY)  # nothing new
    assert (X._model.cache_info().misses, X._stack.cache_info().misses) == (built[0] + 1, built[1] + 1)


@pytest.mark.parametrize("values, name", [
    (dict(depth=0), "depth"), (dict(depth=X.MAX_DEPTH + 1), "depth"), (dict(position="mid"), "position"),
    (dict(architecture="t5"), "architecture"), (dict(width=10, heads=4), "heads"),
])
def test_bad_controls_are_refused_naming_them(values, name):
    with pytest.raises(ValueError, match=name):
        X.encoder_compute(**{**TINY, **values})


def test_the_live_explorer_redraws_what_its_compute_returns():
    small = functools.partial(X.encoder_compute, **TINY)
    explorer = X.encoder_explorer(compute=small)
    assert isinstance(explorer, Explorer)
    png = bytes(explorer.image.value)
    explorer.widgets["architecture"].value = "llama"
    assert bytes(explorer.image.value) != png
    explorer.set(depth=4, position="post")
    shown = gf.drawn(explorer.view.ax)
    result = small(**explorer.values)
    assert [label for label, _, _ in shown] == [p.label for p in result]
    for (_, x, y), p in zip(shown, result):
        np.testing.assert_array_equal(y, p.grad_norms)
        np.testing.assert_array_equal(x, p.layer)


def _index(static: StaticExplorer) -> dict:
    script = re.search(r"<script>(.*)</script>", static.html, re.S).group(1)
    return json.loads(re.search(r"var index = (\{.*?\});", script).group(1))


def test_the_static_twin_is_within_budget_and_every_control_changes_the_frame():
    grid = {"depth": [2, 4], "position": ["pre", "post"], "architecture": ["gpt2", "bert"]}
    static = X.encoder_explorer(static=True, grid=grid, compute=functools.partial(X.encoder_compute, **TINY))
    assert static.size_bytes <= MAX_STATIC_BYTES and static.n_frames == static.n_unique == 8
    index = _index(static)
    for combo in itertools.product(range(2), repeat=3):
        for k in range(3):
            moved = list(combo)
            moved[k] = 1 - moved[k]
            assert index[",".join(map(str, combo))] != index[",".join(map(str, moved))], (combo, k)
