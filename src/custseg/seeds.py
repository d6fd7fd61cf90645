"""Seeds: one user seed, independent derived streams from ``numpy.random.SeedSequence``.

Every random step takes a ``random_state`` (None, an int, a ``SeedSequence``, a
``numpy.random.RandomState`` or a ``Generator``). Steps that need several random
streams (bootstrap replicates, gap reference sets, silhouette samples) derive them
with :func:`spawn` or :func:`derive`, never with arithmetic on the seed, so streams
do not overlap and one replicate's seed is not another's.
"""

from __future__ import annotations

import zlib

import numpy as np

SeedLike = None | int | np.integer | np.random.SeedSequence | np.random.RandomState | np.random.Generator


def as_seed_sequence(random_state: SeedLike) -> np.random.SeedSequence:
    """The ``SeedSequence`` behind ``random_state``.

    An int or a ``SeedSequence`` always gives the same sequence; None gives fresh OS
    entropy; a ``RandomState`` or ``Generator`` is advanced (128 bits are drawn from
    it), as scikit-learn does when it seeds from a generator.

    Raises
    ------
    ValueError
        When ``random_state`` is none of these (a float, a negative int, a string).
    """
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(0, 2**32, size=4, dtype=np.uint64).tolist())
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
    raise ValueError(
        f"random_state must be None, an int, a SeedSequence, a RandomState or a Generator; got {random_state!r}"
    )


def resolve(random_state: SeedLike) -> int | np.random.SeedSequence:
    """Fix ``random_state`` once for a fit: an int stays that int, anything else becomes a ``SeedSequence``.

    Use it at the start of a ``fit`` that hands the seed to several steps, so a
    generator is drawn from once and every step sees the same seed.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    return as_seed_sequence(random_state)


def as_int(random_state: SeedLike) -> int:
    """A 32-bit int seed for APIs that take one (scikit-learn's ``random_state``).

    An int is returned unchanged, so a scikit-learn estimator seeded with it behaves
    exactly as when the user passed ``seed``; anything else goes through :func:`as_seed_sequence`.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    return int(as_seed_sequence(random_state).generate_state(1, dtype=np.uint32)[0])


def spawn(random_state: SeedLike, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child sequences of ``random_state``.

    Unlike ``SeedSequence.spawn`` this does not change the parent: the same
    ``random_state`` always gives the same children.
    """
    parent = as_seed_sequence(random_state)
    return [_child(parent, i) for i in range(n)]


def derive(random_state: SeedLike, purpose: str) -> np.random.SeedSequence:
    """An independent sequence for one named purpose (``"gap"``, ``"bootstrap"``, ...).

    Two purposes never share a stream, whatever order the steps run in.
    """
    return _child(as_seed_sequence(random_state), zlib.crc32(purpose.encode()))


def generator(random_state: SeedLike) -> np.random.Generator:
    """A ``Generator`` drawing from :func:`as_seed_sequence` of ``random_state``."""
    return np.random.default_rng(as_seed_sequence(random_state))


def _child(parent: np.random.SeedSequence, key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, key), pool_size=parent.pool_size)
