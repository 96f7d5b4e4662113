"""Amazon EventBridge event patterns: validation and matching.

``compile_pattern`` validates a pattern the way EventBridge does (``PutRule``,
``TestEventPattern``) and turns it into an :class:`EventPattern`, a tree of small matchers built
once; :meth:`EventPattern.matches` then tests events against it without parsing anything again.
``matches(pattern, event)`` is the one-shot form of ``TestEventPattern``.

No suitable maintained Python library exists: AWS's engine is the Java library event-ruler
(https://github.com/aws/event-ruler), and the Python re-implementations live inside larger
emulators (LocalStack, moto) rather than being published as libraries, and simplify some rules
(LocalStack's, for one, judges wildcard complexity by counting stars). So this module is written
by hand, from the EventBridge user guide, event-ruler's behaviour (``JsonRuleCompiler``,
``ByteMachine``, ``ACFinder``, ``CIDR``, ``WildcardParser``, ``MachineComplexityEvaluator``) and
the cases recorded against AWS by LocalStack; it passes every case of the vectors in
``tests/vectors/eventbridge-patterns``.

Syntax. A pattern is a JSON object; an object value nests, an array value lists what a field may
be (any element may match: OR), and different fields must all match (AND). An array element is:

- a string, number, ``true``, ``false`` or ``null``: equality. Types never mix (``"300"`` is not
  ``300``, ``true`` is not ``1``), numbers compare numerically (``300`` matches ``300.0``), and a
  string that is an IP address matches the same address spelt differently (event-ruler turns it
  into an address range);
- ``{"prefix": s}``, ``{"suffix": s}``, either with ``{"equals-ignore-case": s}`` inside,
  ``{"equals-ignore-case": s}``, ``{"wildcard": s}`` and ``{"exactly": s}``: strings only;
- ``{"anything-but": v}`` with a string, a number, a list of strings or of numbers, or an object
  ``{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": s or [s, ...]}``. It matches any present
  value that is not excluded, including ``null`` and values of another type, never an absent field;
- ``{"numeric": [op, n]}`` or ``{"numeric": [">"|">=", low, "<"|"<=", high]}``: JSON numbers only;
- ``{"cidr": "10.0.0.0/24"}`` (IPv4 or IPv6): strings that are addresses in the block;
- ``{"exists": true|false}``: whether the field has a leaf value (an object, or an empty array,
  is no value: ``exists: false`` matches it, ``exists: true`` does not).

``"$or": [{...}, {...}, ...]`` at any level makes the pattern match when any of the objects does
(with the fields around it); an object inside ``$or`` may not use an operator name as a field.

Matching. Keys are joined with dots on both sides, so ``{"a": {"b": [1]}}``, ``{"a.b": [1]}``,
``{"a": {"b": 1}}`` and ``{"a.b": 1}`` all name the field ``a.b``. An array in the event is looked
through: each element is a candidate (a field matches if any element does). Matching is array
consistent, like event-ruler's ``rulesForJSONEvent``: the fields a pattern matches must not come
from different elements of the same array of objects (``{"m": {"x": [1], "y": [2]}}`` does not
match ``{"m": [{"x": 1}, {"y": 2}]}``). As in event-ruler, fields are tried in sorted order and
``exists: false`` only looks at the elements still consistent with the fields sorted before it.

Validation raises :class:`InvalidEventPattern` with AWS's own reason text (``.message``), e.g.
``Event pattern is not valid. Reason: "int" must be an object or an array``, including wildcard
patterns that are too nondeterministic (event-ruler's complexity measure, see
:func:`_wildcard_complexity`). Known differences from AWS, all outside the public vectors: numbers
are compared as Python numbers over the whole float range (event-ruler, depending on its version,
limits ranges to +/-5e9 and rounds to 6 decimals); JSON syntax errors carry Python's wording, not
Jackson's; ``$or`` may expand to at most 1,000 combinations (EventBridge documents a limit; the
wording of our error is ours); and the handful of event-ruler quirks where one field mixes IP or
numeric patterns with string patterns are not reproduced.

Size and cost. A pattern that comes in — one to test, or a rule's new pattern — is at most
:data:`MAX_PATTERN_CHARACTERS` long (:func:`check_pattern_size`), EventBridge's own ceiling, so that
what compiling it costs is bounded. :func:`matches`, the one-shot test, compiles without caching:
what a caller merely tries never stays in memory. :func:`compile_pattern`, the form for stored
rules, keeps the patterns it compiled in a least-recently-used cache bounded both by entries and
by characters of pattern text, whatever the size of the patterns stored before the limit existed.
"""

from dockyard.domain.patterns.compiled import EventPattern
from dockyard.domain.patterns.entrypoints import (
    _CACHE as _CACHE,
)
from dockyard.domain.patterns.entrypoints import (
    _CompiledPatterns as _CompiledPatterns,
)
from dockyard.domain.patterns.entrypoints import (
    check_pattern_size,
    compile_pattern,
    matches,
)
from dockyard.domain.patterns.errors import (
    MAX_CACHED_CHARACTERS as MAX_CACHED_CHARACTERS,
)
from dockyard.domain.patterns.errors import (
    MAX_CACHED_PATTERNS as MAX_CACHED_PATTERNS,
)
from dockyard.domain.patterns.errors import (
    MAX_COMBINATIONS as MAX_COMBINATIONS,
)
from dockyard.domain.patterns.errors import (
    MAX_PATTERN_CHARACTERS,
    InvalidEvent,
    InvalidEventPattern,
)
from dockyard.domain.patterns.errors import (
    MAX_WILDCARD_COMPLEXITY as MAX_WILDCARD_COMPLEXITY,
)
from dockyard.domain.patterns.errors import (
    REASON_PREFIX as REASON_PREFIX,
)
from dockyard.domain.patterns.wildcards import (
    _wildcard_complexity as _wildcard_complexity,
)
from dockyard.domain.patterns.wildcards import (
    _wildcard_tokens as _wildcard_tokens,
)

__all__ = [
    "MAX_PATTERN_CHARACTERS",
    "EventPattern",
    "InvalidEvent",
    "InvalidEventPattern",
    "check_pattern_size",
    "compile_pattern",
    "matches",
]
