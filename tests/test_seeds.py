"""Seeds: every accepted form, reproducible children, independent named streams."""

from __future__ import annotations

import numpy as np
import pytest

from custseg.seeds import as_int, as_seed_sequence, derive, generator, resolve, spawn


def _state(seq):
    return tuple(seq.generate_state(4))


def test_int_and_seed_sequence_are_reproducible():
    assert _state(as_seed_sequence(7)) == _state(as_seed_sequence(7)) != _state(as_seed_sequence(8))
    seq = np.random.SeedSequence(3)
    assert as_seed_sequence(seq) is seq


def test_generators_are_advanced_and_none_is_fresh():
    rs = np.random.RandomState(0)
    assert _state(as_seed_sequence(rs)) != _state(as_seed_sequence(rs))
    assert _state(as_seed_sequence(np.random.RandomState(0))) == _state(as_seed_sequence(np.random.RandomState(0)))
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    assert _state(as_seed_sequence(g1)) == _state(as_seed_sequence(g2))
    assert _state(as_seed_sequence(None)) != _state(as_seed_sequence(None))


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="random_state"):
        as_seed_sequence(bad)


def test_as_int_keeps_user_ints_and_converts_the_rest():
    assert as_int(0) == 0 and as_int(np.int64(12)) == 12
    x = as_int(np.random.SeedSequence(5))
    assert isinstance(x, int) and 0 <= x < 2**32 and x == as_int(np.random.SeedSequence(5))
    assert resolve(4) == 4
    assert isinstance(resolve(np.random.default_rng(0)), np.random.SeedSequence)


def test_spawn_is_pure_and_children_differ():
    parent = np.random.SeedSequence(9)
    a, b = spawn(parent, 3), spawn(parent, 3)
    assert [_state(s) for s in a] == [_state(s) for s in b]
    assert len({_state(s) for s in a}) == 3
    # the same children numpy's own spawn would give on a fresh parent
    assert [_state(s) for s in a] == [_state(s) for s in np.random.SeedSequence(9).spawn(3)]


def test_named_streams_are_independent_and_stable():
    assert _state(derive(0, "gap")) == _state(derive(0, "gap"))
    assert _state(derive(0, "gap")) != _state(derive(0, "bootstrap")) != _state(derive(1, "bootstrap"))
    assert generator(derive(0, "gap")).random() == generator(derive(0, "gap")).random()
