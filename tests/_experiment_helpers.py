"""What the experiment tests share: comparing two results number for number.

(One torch thread for the whole run is set in tests/conftest.py.)
"""

import numpy as np


def _assert_same(a, b) -> None:
    """Two results hold the same numbers, field by field (arrays bit for bit, NaN equal to NaN)."""
    if hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for name in a.__dataclass_fields__:
            _assert_same(getattr(a, name), getattr(b, name))
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif a is None or isinstance(a, str):
        assert a == b
    else:
        np.testing.assert_array_equal(a, b)


def _assert_facts_hold(facts: dict, seed: int, *, exactly: int = None, at_least: int = None) -> None:
    """A chapter's facts(seed): each a sentence -> bool, as many as stated, and every one holds."""
    assert all(type(v) is bool for v in facts.values())  # plain bools, not numpy ones
    if exactly is not None:
        assert len(facts) == exactly
    if at_least is not None:
        assert len(facts) >= at_least
    failing = [fact for fact, holds in facts.items() if not holds]
    assert not failing, f"seed {seed}: {failing}"
