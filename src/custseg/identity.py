"""Segment identities that survive a refit: match new segments to a reference model's.

A *segment identity* is plain data — a stable id, the segment's number, its name and
its colour index — stored in the model file, so that scoring and month-over-month
comparison speak of the same segment even when a later model is fitted on other
data or with another seed.

Matching works on centres in the **reference model's** scaled feature space: the
new model's segments are located there by embedding their customers with the
reference pipeline and averaging (:func:`centres_in_reference_space`), then paired
with the reference centres by the Hungarian algorithm on Euclidean distances
(:func:`match_segments_to_reference`). A pair is accepted only when the new centre
lies within ``threshold`` times the distance from the reference centre to its
nearest other reference centre (default 0.5). Half that distance is the radius of
the largest ball around a centre that lies wholly inside its Voronoi cell: a new
centre inside it is a place every customer of which the reference model would give
to that segment, and closer to it than to any other reference segment, with a
margin. Beyond it the new segment is reported as *new*, and the reference segment
it would have taken as *vanished*.

Numbers, names and colours (:func:`assign_identities`): a matched segment keeps its
reference identity; a new segment takes a new id, the next number above every
reference number (a vanished segment's number is never reused, so a number always
means one segment across months) and the lowest colour index no reference segment
uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ModelError

#: Default matching threshold, as a share of each reference centre's distance to its nearest neighbour.
DEFAULT_THRESHOLD = 0.5

#: Customers embedded with the reference model at a time when matching a refit.
EMBED_ROWS = 500_000

#: Key of the identities in a model file's state.
STATE_KEY = "segment_identities"


@dataclass(frozen=True)
class SegmentIdentity:
    """Who a segment is, independent of the model that found it.

    Attributes
    ----------
    id : str
        Stable id (``"seg-"`` and 10 hex digits of the SHA-256 of the centre where
        the segment was first found); kept by every later model that matches it.
    number : int
        The segment's number in outputs (1-based).
    name : str
        Plain-language name.
    colour : int
        Index into the report's segment palette.
    """

    id: str
    number: int
    name: str
    colour: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> SegmentIdentity:
        """Rebuild from :meth:`to_dict`; raises ``ModelError`` on a damaged record."""
        try:
            ident = cls(id=str(data["id"]), number=int(data["number"]), name=str(data["name"]),
                        colour=int(data["colour"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"a segment identity record is damaged ({type(exc).__name__}: {exc}): {data!r}") \
                from None
        if ident.number < 1 or ident.colour < 0 or not ident.id:
            raise ModelError(f"a segment identity record is damaged (number, colour or id out of range): {data!r}")
        return ident


@dataclass(frozen=True)
class Matching:
    """The result of matching new segments to reference segments (0-based indices).

    Attributes
    ----------
    pairs : dict of int to int
        New segment index -> matched reference segment index.
    new : tuple of int
        New segments with no reference segment within the threshold.
    vanished : tuple of int
        Reference segments no new segment matched.
    distances : ndarray of shape (n_new, n_ref)
        Centre distances in the reference feature space.
    limits : ndarray of shape (n_ref,)
        Largest accepted distance for each reference segment.
    """

    pairs: dict
    new: tuple
    vanished: tuple
    distances: np.ndarray = field(repr=False)
    limits: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready summary (1-based segment positions, distances and limits)."""
        return {
            "pairs": [{"new": int(i) + 1, "reference": int(j) + 1, "distance": float(self.distances[i, j]),
                       "limit": float(self.limits[j])} for i, j in sorted(self.pairs.items())],
            "new": [int(i) + 1 for i in self.new],
            "vanished": [int(j) + 1 for j in self.vanished],
        }


def _centres(a, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
        raise ModelError(f"{what} must be a finite 2-D array with at least one centre (got shape {arr.shape})")
    return arr


def reference_limits(ref_centres, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Largest accepted distance per reference centre: ``threshold`` x nearest-neighbour distance."""
    ref = _centres(ref_centres, "reference centres")
    if ref.shape[0] == 1:
        return np.full(1, np.inf)
    from sklearn.metrics.pairwise import euclidean_distances  # imported on use: scoring reads identities without it

    d = euclidean_distances(ref)
    np.fill_diagonal(d, np.inf)
    return threshold * d.min(axis=1)


def match_segments_to_reference(new_centres, ref_centres, *, threshold: float = DEFAULT_THRESHOLD) -> Matching:
    """Pair new segments with reference segments by centre distance (Hungarian).

    Parameters
    ----------
    new_centres : array-like of shape (n_new, n_features)
        The new segments' centres **in the reference model's scaled feature space**
        (see :func:`centres_in_reference_space`).
    ref_centres : array-like of shape (n_ref, n_features)
        The reference model's centres.
    threshold : float, default 0.5
        A pair is kept only if its distance is at most ``threshold`` times the
        reference centre's distance to its nearest other reference centre (see the
        module docstring for why 0.5).

    Returns
    -------
    Matching
    """
    new, ref = _centres(new_centres, "new centres"), _centres(ref_centres, "reference centres")
    if new.shape[1] != ref.shape[1]:
        raise ModelError(f"new centres have {new.shape[1]} features but the reference has {ref.shape[1]}; "
                         "express them in the reference feature space first")
    if not (np.isfinite(threshold) and threshold > 0):
        raise ModelError(f"the matching threshold must be a positive number (got {threshold!r})")
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.pairwise import euclidean_distances

    distances = euclidean_distances(new, ref)
    limits = reference_limits(ref, threshold)
    rows, cols = linear_sum_assignment(distances)
    pairs = {int(i): int(j) for i, j in zip(rows, cols) if distances[i, j] <= limits[j]}
    return Matching(pairs=pairs,
                    new=tuple(i for i in range(new.shape[0]) if i not in pairs),
                    vanished=tuple(j for j in range(ref.shape[0]) if j not in set(pairs.values())),
                    distances=distances, limits=limits)


def centres_in_reference_space(Z_ref: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Mean of each new segment's customers embedded with the reference model (``reference.embed(frame)``).

    Raises ``ModelError`` if a segment has no customers.
    """
    sums, counts = _segment_sums(Z_ref, labels, n_clusters)
    return _means(sums, counts)


def _segment_sums(Z: np.ndarray, labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: the sum of its customers' rows and their count."""
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    sums = np.column_stack([np.bincount(labels, weights=Z[:, j], minlength=n_clusters) for j in range(Z.shape[1])])
    return sums, np.bincount(labels, minlength=n_clusters)


def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if np.any(counts == 0):
        raise ModelError(f"segment(s) {[int(k) + 1 for k in np.flatnonzero(counts == 0)]} have no customers")
    return sums / counts[:, None]


def segment_id(centre) -> str:
    """Stable id of a segment first found at ``centre``: deterministic and unique in practice."""
    data = np.ascontiguousarray(np.asarray(centre, dtype="<f8")).tobytes()
    return "seg-" + hashlib.sha256(data).hexdigest()[:10]


def initial_identities(centres, names: Sequence[str]) -> list[SegmentIdentity]:
    """Identities of a model fitted without a reference: segment ``i`` is number ``i + 1``, colour ``i``."""
    centres = _centres(centres, "centres")
    if len(names) != centres.shape[0]:
        raise ModelError(f"{len(names)} names for {centres.shape[0]} segments")
    return [SegmentIdentity(segment_id(c), i + 1, str(n), i) for i, (c, n) in enumerate(zip(centres, names))]


def assign_identities(matching: Matching, reference: Sequence[SegmentIdentity], new_centres,
                      new_names: Sequence[str]) -> list[SegmentIdentity]:
    """Identity of each new segment (in new-segment order) after :func:`match_segments_to_reference`.

    Parameters
    ----------
    matching : Matching
    reference : sequence of SegmentIdentity
        The reference model's identities, in its segment order.
    new_centres : array-like
        The new model's centres (in its own space); they seed the ids of new segments.
    new_names : sequence of str
        The names the new model gave its segments; used for new segments only.
    """
    new_centres = _centres(new_centres, "new centres")
    if len(new_names) != new_centres.shape[0] or len(reference) != matching.distances.shape[1]:
        raise ModelError("the identities, names and centres do not describe the same segments")
    next_number = max((r.number for r in reference), default=0) + 1
    used_colours = {r.colour for r in reference}
    out = []
    for i, name in enumerate(new_names):
        if i in matching.pairs:
            out.append(reference[matching.pairs[i]])
            continue
        colour = next(c for c in range(len(used_colours) + 1) if c not in used_colours)
        used_colours.add(colour)
        out.append(SegmentIdentity(segment_id(new_centres[i]), next_number, str(name), colour))
        next_number += 1
    return out


def renumber(labels: np.ndarray, identities: Sequence[SegmentIdentity]) -> np.ndarray:
    """Segment numbers for 0-based model labels: matched segments keep the reference number."""
    numbers = np.array([ident.number for ident in identities], dtype=np.int64)
    return numbers[np.asarray(labels, dtype=np.int64)]


def identities_to_state(identities: Sequence[SegmentIdentity]) -> list[dict]:
    """The JSON list stored under :data:`STATE_KEY` in a model file."""
    return [ident.to_dict() for ident in identities]


def identities_from_state(state: dict, *, source: str = "the model file") -> list[SegmentIdentity] | None:
    """Identities stored in a model file's state, ``None`` when it has none.

    Raises ``ModelError`` when present but damaged (wrong count, duplicate ids or numbers).
    """
    records = state.get(STATE_KEY)
    if records is None:
        return None
    if not isinstance(records, list):
        raise ModelError(f"{source}: '{STATE_KEY}' is damaged (not a list).")
    identities = [SegmentIdentity.from_dict(r) for r in records]
    centres = state.get("centers")
    if isinstance(centres, list) and len(centres) != len(identities):
        raise ModelError(f"{source}: {len(identities)} segment identities for {len(centres)} segments.")
    if len({i.id for i in identities}) != len(identities) or len({i.number for i in identities}) != len(identities):
        raise ModelError(f"{source}: segment identities repeat an id or a number.")
    return identities


def identities_for_refit(reference_model, reference_identities: Sequence[SegmentIdentity], new_model, frame,
                         new_names: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD,
                         reference_label: str = "the reference model",
                         rows: int = EMBED_ROWS) -> tuple[list[SegmentIdentity], Matching]:
    """``run --reference``: identities of ``new_model`` (fitted on ``frame``) matched to a reference model.

    The new segments' centres are the means of their customers embedded with the
    reference pipeline, ``rows`` customers at a time (memory stays bounded on
    millions). Raises ``ModelError`` when ``frame`` lacks columns the reference
    model needs.
    """
    absent = [c for c in reference_model.required_columns_ if c not in frame.columns]
    if absent:
        raise ModelError(f"{reference_label} needs column(s) {', '.join(absent)}, which the new data lack; "
                         "segment without --reference or supply those columns.")
    k, labels = new_model.n_clusters_, np.asarray(new_model.labels_)
    sums, counts = 0.0, 0
    for start in range(0, len(frame), rows):
        block = _segment_sums(reference_model.embed(frame.iloc[start:start + rows]), labels[start:start + rows], k)
        sums, counts = sums + block[0], counts + block[1]
    centres = _means(sums, counts)
    matching = match_segments_to_reference(centres, reference_model.cluster_centers_, threshold=threshold)
    return assign_identities(matching, reference_identities, new_model.cluster_centers_, new_names), matching
