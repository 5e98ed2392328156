"""Tests of gradlib.diagrams: the articles' two pictures are patches on the given axes, in the roles' colours,
with the counts the captions promise (every pair of the group call, one hand-off per neighbour, one box per
layer), English text only, and the global rcParams untouched."""
from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib import diagrams as gd  # noqa: E402
from gradlib.style import ROLE_COLORS  # noqa: E402


def _axes():
    return Figure(figsize=(4, 2), dpi=30).add_subplot()


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _boxes(ax, color=None):
    return [p for p in ax.patches if isinstance(p, patches.FancyBboxPatch)
            and (color is None or to_hex(p.get_edgecolor()) == color.lower())]


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("draw", [gd.draw_relay_vs_group_call, gd.draw_mountain_road_vs_expressway,
                                  gd.draw_transformer_block])
def test_diagrams_are_patches_on_the_given_axes_with_english_labels_only(draw):
    ax = _axes()
    before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    assert draw(ax=ax) is ax
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == before
    assert len(_boxes(ax)) >= 6
    assert not ax.axison and ax.get_aspect() == 1.0
    text = "".join(_texts(ax))
    assert "token" in text or "layer" in text or "block" in text
    assert all(ord(ch) < 0x2E80 for ch in text), "CJK glyphs are missing from DejaVu"
    ax.figure.canvas.draw()


@pytest.mark.parametrize("n", [3, 6, 8])
def test_relay_connects_neighbours_and_the_group_call_connects_every_pair(n):
    ax = gd.draw_relay_vs_group_call(ax=_axes(), n_tokens=n)
    chords = [line for line in ax.lines if len(line.get_xdata()) == 2]
    arrows = [p for p in ax.patches if isinstance(p, patches.FancyArrowPatch)]
    assert len(chords) == n * (n - 1) // 2  # every pair talks directly
    assert all(to_hex(c.get_color()) == ROLE_COLORS["attention"].lower() for c in chords)
    assert len(arrows) == n - 1  # one hand-off per neighbour
    assert len(_boxes(ax, ROLE_COLORS["baseline"])) == n and len(_boxes(ax, ROLE_COLORS["attention"])) == n
    assert f"token 1 reaches token {n} after {n - 1} hand-offs" in _texts(ax)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_mountain_road_has_one_box_per_layer_on_each_side_and_a_skip_lane_per_layer(n):
    ax = gd.draw_mountain_road_vs_expressway(ax=_axes(), n_layers=n)
    assert [t for t in _texts(ax) if t.startswith("layer ")] == [f"layer {i}" for i in range(1, n + 1)]
    assert [t for t in _texts(ax) if t.startswith("f")] == [f"f{i}" for i in range(1, n + 1)]
    assert len(_boxes(ax, ROLE_COLORS["baseline"])) == n and len(_boxes(ax, ROLE_COLORS["residual"])) == n
    assert len([p for p in ax.patches if isinstance(p, patches.Circle)]) == n  # one ⊕ per layer
    arrows = [p for p in ax.patches if isinstance(p, patches.FancyArrowPatch)]
    assert len(arrows) == (n + 1) + 3 * n + 1  # the road's hops; lane, into f, back per layer; the last lane


def test_diagram_sizes_out_of_range_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="n_tokens"):
        gd.draw_relay_vs_group_call(ax=_axes(), n_tokens=20)
    with pytest.raises(ValueError, match="n_tokens"):
        gd.draw_relay_vs_group_call(ax=_axes(), n_tokens=2)
    with pytest.raises(ValueError, match="n_layers"):
        gd.draw_mountain_road_vs_expressway(ax=_axes(), n_layers=7)


def test_diagram_without_ax_makes_a_white_pyplot_figure():
    ax = gd.draw_relay_vs_group_call()
    assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]
    assert ax.figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)


def _box_y(ax, word):
    """Centre heights of the boxes whose text contains word, bottom to top."""
    return sorted(t.get_position()[1] for t in ax.texts if word in t.get_text() and t.get_text() != "+")


@pytest.mark.parametrize("position", ["pre", "post"])
def test_transformer_block_has_attention_and_ffn_each_with_a_skip_and_a_norm_in_its_place(position):
    ax = gd.draw_transformer_block(ax=_axes(), norm_position=position)
    text = "\n".join(_texts(ax))
    for name in ("W_Q", "W_K", "W_V", "W_O", "heads", "d_head", "d_model", "d_ff", "W_1", "W_2", "causal mask",
                 "residual", "LayerNorm", "feed-forward", "Pre-LN" if position == "pre" else "Post-LN"):
        assert name in text, name
    assert len([p for p in ax.patches if isinstance(p, patches.Circle)]) == 2  # one ⊕ per sub-layer
    assert len(_boxes(ax, ROLE_COLORS["norm"])) == 2 and len(_boxes(ax, ROLE_COLORS["attention"])) == 1
    attn, ffn = _box_y(ax, "self-attention")[0], _box_y(ax, "feed-forward")[0]
    norms = sorted(t.get_position()[1] for t in ax.texts if t.get_text() == "LayerNorm")
    pluses = sorted(c.center[1] for c in ax.patches if isinstance(c, patches.Circle))
    assert attn < pluses[0] < ffn < pluses[1]  # attention, add, FFN, add: bottom to top
    if position == "pre":  # each norm below its sub-layer, on the branch (left of the stream)
        assert norms[0] < attn and pluses[0] < norms[1] < ffn
    else:  # each norm right after its addition, on the stream
        assert pluses[0] < norms[0] < ffn and pluses[1] < norms[1]
    ax.figure.canvas.draw()


def test_transformer_block_bad_position_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="^norm_position"):
        gd.draw_transformer_block(ax=_axes(), norm_position="middle")
