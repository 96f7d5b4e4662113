"""The compiled form of a pattern and the walk over an event that tests it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from dockyard.domain.patterns.errors import InvalidEvent

# -- the compiled form --------------------------------------------------------------------------

#: One leaf value of the event and the array elements it sits in: ``((id(array), index), ...)``.
_Occurrence = tuple[Any, tuple[tuple[int, int], ...]]
_Accept = Callable[[Any], bool]
_MISSING: Final = object()
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True, slots=True)
class _Field:
    """One dotted field name of a pattern and what its leaf values may be."""

    name: str
    #: The leaf values the event has under the name (see :func:`_collector`).
    collect: Callable[[Mapping[str, Any]], list[_Occurrence]]
    accept: _Accept
    #: ``{"exists": false}`` is one of the alternatives.
    absent: bool


@dataclass(frozen=True, slots=True)
class _Branch:
    """The fields that must all match (one alternative of the pattern's ``$or``s), sorted."""

    fields: tuple[_Field, ...]

    def matches(self, event: Mapping[str, Any], cache: dict[str, list[_Occurrence]] | None) -> bool:
        found: list[list[_Occurrence]] = []
        in_arrays = False
        for item in self.fields:
            if cache is None:
                occurrences = item.collect(event)
            elif item.name in cache:
                occurrences = cache[item.name]
            else:
                occurrences = cache[item.name] = item.collect(event)
            hit = nested = False
            accept = item.accept
            for value, membership in occurrences:
                if membership:
                    nested = True
                if not hit and accept(value):
                    hit = True
            # A necessary condition, and the whole answer when no array of objects is involved.
            if not (hit or (item.absent and (nested or not occurrences))):
                return False
            in_arrays = in_arrays or nested
            found.append(occurrences)
        if not in_arrays:
            return True
        return _consistent_match(self.fields, found, 0, {}, set())


@dataclass(frozen=True, slots=True)
class EventPattern:
    """A validated pattern, compiled; immutable and safe to share between threads."""

    #: The pattern as JSON (``json.dumps`` of it, keys in the order given).
    source: str
    _branches: tuple[_Branch, ...] = field(repr=False, compare=False)

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` (a parsed JSON object) matches, as EventBridge would decide."""
        if type(event) is not dict and not isinstance(event, Mapping):
            raise InvalidEvent("an event is a JSON object")
        branches = self._branches
        if len(branches) == 1:
            return branches[0].matches(event, None)
        cache: dict[str, list[_Occurrence]] = {}
        return any(branch.matches(event, cache) for branch in branches)


# -- walking the event --------------------------------------------------------------------------


def _collector_two(
    name: str, outer: str, inner: str
) -> Callable[[Mapping[str, Any]], list[_Occurrence]]:
    """``_collector`` for ``outer.inner``, the second most common shape (``detail.state``)."""
    steps = (((outer, 1), (name, 2)), ((inner, 2),))

    def collect_two(event: Mapping[str, Any]) -> list[_Occurrence]:
        found: list[_Occurrence] = []
        parent = event.get(outer, _MISSING)
        if parent.__class__ is dict:
            value = parent.get(inner, _MISSING)
            if value.__class__ in _SCALARS:
                found.append((value, ()))
            elif value is not _MISSING:
                _leaves(value, (), found)
        elif parent is not _MISSING:
            _collect({outer: parent}, steps, 0, 2, (), found)
        value = event.get(name, _MISSING)  # the key "outer.inner" itself
        if value is not _MISSING:
            _leaves(value, (), found)
        return found

    return collect_two


def _collect(
    node: Mapping[str, Any],
    steps: tuple[tuple[tuple[str, int], ...], ...],
    index: int,
    size: int,
    membership: tuple[tuple[int, int], ...],
    found: list[_Occurrence],
) -> None:
    """Append the leaf values under ``node`` whose path, from name component ``index`` on, spells
    the field's name; event keys may hold dots (``"a.b"`` is the path ``a`` then ``b``)."""
    for key, after in steps[index]:
        child = node.get(key, _MISSING)
        if child is _MISSING:
            continue
        if after == size:
            if child.__class__ in _SCALARS:
                found.append((child, membership))
            else:
                _leaves(child, membership, found)
        elif type(child) is dict or isinstance(child, Mapping):
            _collect(child, steps, after, size, membership, found)
        elif isinstance(child, list | tuple):
            _collect_in_array(child, steps, after, size, membership, found)


def _collect_in_array(
    array: Sequence[Any],
    steps: tuple[tuple[tuple[str, int], ...], ...],
    index: int,
    size: int,
    membership: tuple[tuple[int, int], ...],
    found: list[_Occurrence],
) -> None:
    for position, element in enumerate(array):
        inner = (*membership, (id(array), position))
        if type(element) is dict or isinstance(element, Mapping):
            _collect(element, steps, index, size, inner, found)
        elif isinstance(element, list | tuple):
            _collect_in_array(element, steps, index, size, inner, found)


def _leaves(value: Any, membership: tuple[tuple[int, int], ...], found: list[_Occurrence]) -> None:
    """The leaf values of a field: the value itself, or the scalars in an array (objects are no
    value). Like event-ruler, only containers inside an array record their position in it."""
    if isinstance(value, list | tuple):
        for position, element in enumerate(value):
            if isinstance(element, list | tuple):
                _leaves(element, (*membership, (id(value), position)), found)
            elif not isinstance(element, Mapping):
                found.append((element, membership))
    elif not isinstance(value, Mapping):
        found.append((value, membership))


def _consistent_match(
    fields: tuple[_Field, ...],
    found: list[list[_Occurrence]],
    index: int,
    chosen: dict[int, int],
    failed: set[tuple[int, tuple[tuple[int, int], ...]]],
) -> bool:
    """Whether fields ``index`` on can match with values from the array elements ``chosen`` so
    far (array id -> position), each field adding the elements its value comes from."""
    if index == len(fields):
        return True
    key = (index, tuple(sorted(chosen.items())))
    if key in failed:
        return False
    item = fields[index]
    tried: set[tuple[tuple[int, int], ...]] = set()
    compatible = False
    for value, membership in found[index]:
        if not all(chosen.get(array, position) == position for array, position in membership):
            continue
        compatible = True
        if membership in tried or not item.accept(value):
            continue
        tried.add(membership)
        following = {**chosen, **dict(membership)} if membership else chosen
        if _consistent_match(fields, found, index + 1, following, failed):
            return True
    if (
        item.absent
        and not compatible
        and _consistent_match(fields, found, index + 1, chosen, failed)
    ):
        return True
    failed.add(key)
    return False
