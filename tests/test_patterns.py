"""EventBridge event patterns (dockyard.domain.patterns) against the public vectors in
tests/vectors/eventbridge-patterns (see its README.md): every LocalStack case recorded against AWS's
TestEventPattern, event-ruler's array and $or files with the results its Java tests assert, and
cases of our own for what the vectors leave out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import json5
import pytest

from dockyard.domain import patterns
from dockyard.domain.patterns import (
    MAX_PATTERN_CHARACTERS,
    EventPattern,
    InvalidEvent,
    InvalidEventPattern,
    _CompiledPatterns,
    _wildcard_complexity,
    _wildcard_tokens,
    check_pattern_size,
    compile_pattern,
    matches,
)
from dockyard.errors import ValidationError

VECTORS = Path(__file__).resolve().parent / "vectors" / "eventbridge-patterns"
LOCALSTACK = VECTORS / "localstack"
EVENT_RULER = VECTORS / "event-ruler"
MANIFEST = json.loads((VECTORS / "localstack-manifest.json").read_text())
CASES = MANIFEST["cases"]


def case_id(case: dict[str, Any]) -> str:
    name = case["file"]
    return name if isinstance(name, str) else name[-1]


def load_case(case: dict[str, Any]) -> tuple[str | dict[str, Any], dict[str, Any]]:
    """(pattern, event). The multi-key case keeps its pattern as text: it repeats a key."""
    name = case["file"]
    if isinstance(name, list):
        event_file, pattern_file = name
        return (LOCALSTACK / pattern_file).read_text(), json.loads(
            (LOCALSTACK / event_file).read_text()
        )
    document = json5.loads((LOCALSTACK / name).read_text())
    return document["EventPattern"], document["Event"]


def read_json(name: str) -> Any:
    return json.loads((EVENT_RULER / name).read_text())


# -- LocalStack's cases, recorded against AWS ---------------------------------------------------


def test_the_vectors_are_all_there() -> None:
    counts = {"match": 0, "no_match": 0, "invalid_pattern": 0}
    for case in CASES:
        counts[case["expected"]] += 1
    assert counts == MANIFEST["counts"] == {"match": 67, "no_match": 51, "invalid_pattern": 38}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_localstack_vector(case: dict[str, Any]) -> None:
    pattern, event = load_case(case)
    if case["expected"] == "invalid_pattern":
        expected = case["aws_error"]["message"].splitlines()[0]
        with pytest.raises(InvalidEventPattern) as raised:
            compile_pattern(pattern)
        assert raised.value.message == expected
        with pytest.raises(InvalidEventPattern):
            matches(pattern, event)
    else:
        assert matches(pattern, event) is (case["expected"] == "match")


# -- event-ruler's files ------------------------------------------------------------------------

# GenericMachineTest.nestedArraysTest: rules 1 and 2 match event 1, nothing matches event 2,
# rule 3 matches event 3 only with rulesForEvent (fields combined across elements of the
# "metrics" array; rulesForJSONEvent, the array-consistent API, finds nothing) and matches
# event 4. Rule 4 is not in that test; its outcomes follow from the same rules: element 0 of
# event 3 (CPUUtilization, AWS/EC2) and the one element of event 4 satisfy it, events 1 and 2
# have no top-level "metrics".
ARRAY_CASES = [
    (1, 1, True),
    (2, 1, True),
    (3, 1, False),
    (4, 1, False),
    (1, 2, False),
    (2, 2, False),
    (3, 2, False),
    (4, 2, False),
    (1, 3, False),
    (2, 3, False),
    (3, 3, False),  # array consistency: the two fields come from different elements
    (4, 3, True),
    (1, 4, False),
    (2, 4, False),
    (3, 4, True),
    (4, 4, True),
]


@pytest.mark.parametrize(
    ("rule", "event", "expected"),
    ARRAY_CASES,
    ids=[f"arrayRule{r}-arrayEvent{e}" for r, e, _ in ARRAY_CASES],
)
def test_event_ruler_arrays(rule: int, event: int, expected: bool) -> None:
    pattern = (EVENT_RULER / f"arrayRule{rule}.json").read_text()
    assert matches(pattern, read_json(f"arrayEvent{event}.json")) is expected


def test_or_relationship_rules() -> None:
    # JsonRuleCompilerTest.testMoreCaseOfOrRelationshipRules: every rule compiles, into this
    # many alternatives ("sub-rules").
    rules = read_json("orRelationshipRules.json")
    assert [len(compile_pattern(rule)._branches) for rule in rules] == [2, 4, 3, 4, 2]
    either, parallel, nested_and, nested_or, deep = rules
    assert matches(either, {"metricName": "ReadLatency"})
    assert matches(either, {"namespace": "AWS/ES"})
    assert not matches(either, {"metricName": "Other", "namespace": "AWS/S3"})
    assert matches(parallel, {"namespace": "AWS/EC2", "detail": {"source": "aws.cloudwatch"}})
    assert not matches(parallel, {"namespace": "AWS/EC2", "detail": {"source": "aws.s3"}})
    assert matches(
        nested_and, {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES"}
    )
    assert not matches(nested_and, {"source": "aws.cloudwatch", "namespace": "AWS/ES"})
    assert matches(
        nested_or,
        {
            "source": "aws.cloudwatch",
            "metricType": "MetricType",
            "namespace": "AWS/EC2",
            "spaceId": 1000,
        },
    )
    assert not matches(
        nested_or, {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2"}
    )
    assert matches(
        deep,
        {
            "source": "aws.cloudwatch",
            "detail": {"state": {"value": "ALARM"}},
            "withoutConfiguration": {"metric": {"name": "AWS/Default"}},
        },
    )


def test_or_rules_of_the_basic_function_test() -> None:
    # JsonRuleCompilerTest.testBasicFunctionOfOrRelationshipRules: 3 and 6 alternatives, and
    # the event matches both rules.
    event = {
        "detail": {
            "detail-type": "EC2 Instance State-change Notification",
            "resources": "arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000",
            "info": {"state-status": "running", "state-count": {"count": 100}},
            "c-count": 1,
            "d-count": 8,
        },
        "news": {"newsProviders": "p1", "newCondition1": "news111", "newCondition2": "news222"},
    }
    counts = [
        {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
        {"d-count": [{"numeric": ["<", 10]}]},
        {"x-limit": [{"numeric": ["=", 3.018e2]}]},
    ]
    rule1 = {"detail": {"$or": counts}}
    rule2 = {
        "detail": {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "info": {"state-status": ["initializing", "running"], "state-count": {"count": [100]}},
            "$or": counts,
        },
        "news": {
            "newsProviders": ["p1", "p2"],
            "$or": [{"newCondition1": ["news111"]}, {"newCondition2": ["news222"]}],
        },
    }
    assert len(compile_pattern(rule1)._branches) == 3
    assert len(compile_pattern(rule2)._branches) == 6
    assert matches(rule1, event)
    assert matches(rule2, event)


def test_wrong_or_relationship_rules_are_rejected() -> None:
    # JsonRuleCompilerTest.testWrongOrRelationshipRules: each rule throws.
    reasons = []
    for rule in read_json("wrongOrRelationshipRules.json"):
        with pytest.raises(InvalidEventPattern) as raised:
            compile_pattern(rule)
        reasons.append(raised.value.reason)
    assert reasons == [
        "There must have at least 2 Objects in $or relationship.",
        "Only JSON object is allowed in array of $or relationship.",
    ]


def test_or_wording_is_rejected_by_the_json_compiler() -> None:
    # event-ruler's legacy RuleCompiler reads "$or" in these rules as a plain field name
    # (JsonRuleCompilerTest.testOrFieldCanKeepWorkingInLegacyRuleCompiler). EventBridge uses the
    # JSON compiler, for which "$or" is always the operator (AWS matches $or patterns, see the
    # complex_or vectors): there, all four rules are invalid.
    reasons = []
    for rule in read_json("normalRulesWithOrWording.json"):
        with pytest.raises(InvalidEventPattern) as raised:
            compile_pattern(rule)
        reasons.append(raised.value.reason)
    assert reasons == [
        "cidr is Ruler reserved fieldName which cannot be used inside $or.",
        "It must be an Array followed with $or.",
        "numeric is Ruler reserved fieldName which cannot be used inside $or.",
        "numeric is Ruler reserved fieldName which cannot be used inside $or.",
    ]


CORRECTNESS = read_json("correctness-cases.json")


@pytest.mark.parametrize("case", CORRECTNESS, ids=[case["name"] for case in CORRECTNESS])
def test_correctness_corpus_compiles_and_matches_without_error(case: dict[str, Any]) -> None:
    # The corpus has no expected results: this only checks that each rule compiles and that
    # matching its event returns a boolean.
    assert isinstance(compile_pattern(case["rule"]).matches(case["event"]), bool)


# -- our own cases ------------------------------------------------------------------------------


def test_array_consistency_across_elements() -> None:
    # GenericMachineTest's "hypotheses" case: no element has both values.
    pattern = {"hypotheses": {"isBluePrint": [False], "creator": ["A123"]}}
    event = {
        "hypotheses": [
            {"isBluePrint": True, "creator": "A123"},
            {"isBluePrint": False, "creator": "A234"},
        ]
    }
    assert not matches(pattern, event)
    event["hypotheses"].append({"isBluePrint": False, "creator": "A123"})
    assert matches(pattern, event)
    # Arrays of scalars are not elements to keep apart: "tags" matches any element.
    assert matches({"tags": ["b"], "id": [1]}, {"tags": ["a", "b"], "id": 1})


def test_exists_false_follows_event_rulers_field_order() -> None:
    # event-ruler (ACFinder) matches fields in sorted order; exists:false only looks at the
    # elements still consistent with the fields sorted before it.
    event = {"m": [{"a": "x"}, {"b": 1}]}
    assert matches({"m": {"a": ["x"], "b": [{"exists": False}]}}, event)
    assert not matches({"m": {"a": [{"exists": False}], "b": [1]}}, event)
    assert matches({"c": [{"exists": False}], "d": [{"exists": False}]}, {})  # testEmptyInput
    assert matches({"c": [{"exists": False}]}, {"c": {"nested": 1}})  # an object is no value
    assert matches({"c": [{"exists": False}]}, {"c": []})


def test_ipv6_cidr() -> None:
    pattern = {"ip": [{"cidr": "2001:db8::/32"}]}
    assert matches(pattern, {"ip": "2001:DB8:ffff::1"})
    assert matches(pattern, {"ip": "2001:0db8:0000:0000:0000:0000:0000:0000"})
    assert not matches(pattern, {"ip": "2001:db9::"})
    assert not matches(pattern, {"ip": "10.0.0.1"})
    assert not matches(pattern, {"ip": ["not an address", 7]})
    # An IPv4-mapped IPv6 address is its IPv4 address, as Java's InetAddress reads it.
    assert matches({"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "::ffff:a00:1"})
    # A literal address matches the same address spelt another way.
    assert matches({"ip": ["2001:db8::1"]}, {"ip": "2001:0DB8:0:0:0:0:0:1"})


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("2001:db8::/128", "IPv6 mask bits must be < 128"),
        ("10.0.0.1/32", "IPv4 mask bits must be < 32"),
        ("10.0.0.0/-1", "Malformed CIDR, mask bits must not be negative"),
        ("10.0.0.0/", "Malformed CIDR, one '/' required"),
        ("999.1.1.1/8", "Invalid IP address: 999.1.1.1"),
        ("1::2::3/64", "Invalid IP address: 1::2::3"),
        ("host.example/8", "Nonstandard IP address: host.example"),
    ],
)
def test_bad_cidr(cidr: str, reason: str) -> None:
    with pytest.raises(InvalidEventPattern) as raised:
        compile_pattern({"ip": [{"cidr": cidr}]})
    assert raised.value.reason == reason


def test_anything_but_wildcard() -> None:
    pattern = {"path": [{"anything-but": {"wildcard": ["*.tmp", "*/cache/*"]}}]}
    assert matches(pattern, {"path": "a/b.txt"})
    assert not matches(pattern, {"path": "a/b.tmp"})
    assert not matches(pattern, {"path": "x/cache/y"})
    assert matches(pattern, {"path": 5})  # not a string: not excluded
    assert matches(pattern, {"path": None})
    assert not matches(pattern, {})  # anything-but never matches an absent field
    with pytest.raises(InvalidEventPattern) as raised:
        compile_pattern({"path": [{"anything-but": {"wildcard": ["ok", "a**"]}}]})
    assert raised.value.reason == "Consecutive wildcard characters at pos 2"


def test_wildcards() -> None:
    assert matches({"s": [{"wildcard": "a*b*c"}]}, {"s": "abc"})  # * matches nothing too
    assert matches({"s": [{"wildcard": "a*b*c"}]}, {"s": "a-b-b-c"})
    assert not matches({"s": [{"wildcard": "a*b*c"}]}, {"s": "a-c-b"})
    assert matches({"s": [{"wildcard": "a\\*b*"}]}, {"s": "a*bzz"})  # \* is a star
    assert not matches({"s": [{"wildcard": "a\\*b*"}]}, {"s": "axbzz"})
    assert matches({"s": [{"wildcard": "a\\\\b"}]}, {"s": "a\\b"})  # \\ is a backslash
    for text, position in (("a\\b", 2), ("ab\\", 3)):
        with pytest.raises(InvalidEventPattern) as raised:
            compile_pattern({"s": [{"wildcard": text}]})
        assert raised.value.reason == f"Invalid escape character at pos {position}"


def test_wildcard_complexity_is_event_rulers_measure() -> None:
    # Values asserted by event-ruler's MachineComplexityEvaluatorTest (patterns without quotes).
    def complexity(*patterns: str) -> int:
        return _wildcard_complexity([_wildcard_tokens(p, quoted=False) for p in patterns], 100)

    assert complexity("*") == 1
    assert complexity("*aa") == 3
    assert complexity("a*bcb") == 3
    assert complexity("a*aaa", "aa*aa") == 7
    assert complexity("ab*cd", "ab*wx", "ab*yz") == 6
    assert complexity("*a*a*a*a*a*a*a*a*") == 17
    assert complexity("F*eatureFeature", "Fe*atureFeature", "Fea*tureFeature") == 10
    assert complexity("ab*c", "ab*c") == 2  # duplicates count once
    # The rule is refused above 10: AWS accepts 7 and refuses 11 (the vectors).
    compile_pattern({"f": [{"wildcard": "*a*b*c*d*e*"}]})
    with pytest.raises(InvalidEventPattern) as raised:
        compile_pattern({"f": [{"wildcard": "*a*a*a*a*a*a*"}]})
    assert raised.value.reason.startswith("Rule is too complex")


def test_numeric_combined_ranges() -> None:
    closed_open = {"n": [{"numeric": [">=", 0, "<", 10]}]}
    open_closed = {"n": [{"numeric": [">", 0, "<=", 5]}]}
    for value, first, second in [
        (0, True, False),
        (5, True, True),
        (5.0, True, True),
        (9.999, True, False),
        (10, False, False),
        (-1, False, False),
        ("5", False, False),
        (True, False, False),
        (None, False, False),
    ]:
        assert matches(closed_open, {"n": value}) is first, value
        assert matches(open_closed, {"n": value}) is second, value
    assert matches({"n": [{"numeric": ["=", 3.018e2]}]}, {"n": 301.8})
    assert matches({"n": [{"numeric": ["<", 0]}, {"numeric": [">", 100]}]}, {"n": [50, 101]})


@pytest.mark.parametrize(
    ("numeric", "reason"),
    [
        ([">", 5, "<", 5], "Bottom must be less than top"),
        ([">", 1, "<", 5, 6], "Too many terms in numeric range expression"),
        (["<", 5, ">", 1], "Too many elements in numeric expression"),
        (["=", True], "Value of equals must be numeric"),
        ([], "Invalid member in numeric match: ]"),
        (["!", 1], "Unrecognized numeric range operator: !"),
        ([">", 1, 5], "Bad value in numeric range: 5"),
    ],
)
def test_bad_numeric(numeric: list[Any], reason: str) -> None:
    with pytest.raises(InvalidEventPattern) as raised:
        compile_pattern({"n": [{"numeric": numeric}]})
    assert raised.value.reason == reason


def test_pattern_text_with_duplicate_keys() -> None:
    text = '{"a": ["x"], "a": ["y"]}'
    assert matches(text, {"a": "y"})
    assert not matches(text, {"a": "x"})
    assert compile_pattern(text).source == '{"a": ["y"]}'
    # A repeated object merges: only a repeated field is replaced.
    merged = '{"d": {"a": ["x"]}, "d": {"b": ["y"]}}'
    assert matches(merged, {"d": {"a": "x", "b": "y"}})
    assert not matches(merged, {"d": {"b": "y"}})


def test_types_do_not_mix() -> None:
    assert matches({"n": [300]}, {"n": 300.0})
    assert not matches({"n": [300]}, {"n": "300"})
    assert not matches({"n": ["300"]}, {"n": 300})
    assert not matches({"n": [1]}, {"n": True})
    assert not matches({"n": [True]}, {"n": 1})
    assert matches({"n": [None]}, {"n": None})
    assert not matches({"n": [None]}, {})
    assert matches({"n": [{"anything-but": 300}]}, {"n": "300"})


def test_equals_ignore_case_beyond_ascii() -> None:
    assert matches({"s": [{"equals-ignore-case": "ÉCOLE"}]}, {"s": "école"})
    assert not matches({"s": [{"equals-ignore-case": "k"}]}, {"s": "\u212a"})  # Kelvin sign
    assert matches({"s": [{"prefix": {"equals-ignore-case": "straße"}}]}, {"s": "STRAßE 5"})
    assert matches({"s": [{"suffix": {"equals-ignore-case": "PNG"}}]}, {"s": "a.png"})


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[1, 2]", "Filter is not an object"),
        ("{}", "Empty objects are not allowed"),
        ('{"a": [[1]]}', "Match value must be String, number, true, false, or null"),
        ('{"a": [{}]}', "Match expression name not found"),
        ('{"a": [{"prefix": "x", "b": 1}]}', "Only one key allowed in match expression"),
        ('{"a": [{"exists": "yes"}]}', "exists match pattern must be either true or false."),
        ('{"a": [{"anything-but": {"foo": 1}}]}', "Unsupported anything-but pattern: foo"),
        (
            '{"a": [{"anything-but": [1, "a"]}]}',
            "Inside anything but list, either all values are number or string, "
            "mixed type is not supported",
        ),
        (
            '{"$or": [{"a": [1]}, {"prefix": [1]}]}',
            "prefix is Ruler reserved fieldName which cannot be used inside $or.",
        ),
    ],
)
def test_invalid_patterns_of_our_own(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidEventPattern) as raised:
        compile_pattern(pattern)
    assert raised.value.reason == reason


def test_invalid_json_and_the_error_shape() -> None:
    with pytest.raises(InvalidEventPattern) as raised:
        compile_pattern('{"a": [1]')
    error = raised.value
    assert error.message.startswith("Event pattern is not valid. Reason: Filter is not valid JSON")
    assert str(error) == f"pattern: {error.message}"
    assert isinstance(error, ValidationError) and isinstance(error, ValueError)
    assert error.field == "pattern"
    with pytest.raises(InvalidEventPattern):
        compile_pattern('{"a": [NaN]}')
    with pytest.raises(InvalidEventPattern):
        compile_pattern([1])  # type: ignore[arg-type]


def test_events_as_text() -> None:
    assert matches('{"a": [1]}', '{"a": 1}')
    with pytest.raises(InvalidEvent) as raised:
        matches('{"a": [1]}', "[1]")
    assert isinstance(raised.value, ValueError) and raised.value.field == "event"
    with pytest.raises(InvalidEvent):
        matches('{"a": [1]}', "{")


def test_dotted_keys_on_both_sides() -> None:
    for pattern in ({"a": {"b": [1]}}, {"a.b": [1]}):
        for event in ({"a": {"b": 1}}, {"a.b": 1}, {"a": [{"b": 1}]}):
            assert matches(pattern, event), (pattern, event)
    assert matches({"a": {"b": {"c": [1]}}}, {"a.b": {"c": 1}})
    assert not matches({"a": {"b": [1]}}, {"a": {"b": {"c": 1}}})


def test_compiled_patterns_are_cached_and_immutable() -> None:
    pattern = compile_pattern({"source": ["aws.ec2"]})
    assert isinstance(pattern, EventPattern)
    assert compile_pattern('{"source": ["aws.ec2"]}') is pattern
    assert pattern.source == '{"source": ["aws.ec2"]}'
    with pytest.raises(AttributeError):
        pattern.source = "{}"  # type: ignore[misc]


# -- size and cost -------------------------------------------------------------------------------


def sized(size: int) -> str:
    """Pattern text of exactly ``size`` characters."""
    bare = len('{"source":[""]}')
    return '{"source":["' + "x" * (size - bare) + '"]}'


def test_a_pattern_is_at_most_4096_characters_as_on_eventbridge() -> None:
    limit = sized(MAX_PATTERN_CHARACTERS)
    assert len(limit) == MAX_PATTERN_CHARACTERS == 4096
    assert not matches(limit, {"source": "ci"})
    for too_long in (sized(MAX_PATTERN_CHARACTERS + 1), json.loads(sized(600_000))):
        with pytest.raises(InvalidEventPattern) as raised:
            matches(too_long, {"source": "ci"})
        assert raised.value.field == "pattern"
        assert raised.value.message.startswith(
            "Event pattern is not valid. Reason: Event pattern must have length less than or"
            " equal to 4096 characters (this one has "
        )
    # An object is measured as compact JSON, its text as written (spaces count, as on AWS).
    check_pattern_size(json.loads(limit))
    with pytest.raises(InvalidEventPattern):
        check_pattern_size(limit.replace(":", ": "))
    # Not a pattern at all: the compiler says why.
    check_pattern_size(None)
    check_pattern_size({"a": {1, 2}})


def test_a_stored_pattern_of_any_size_still_compiles() -> None:
    """compile_pattern serves the rules already stored, some perhaps from before the limit."""
    assert not compile_pattern(sized(20_000)).matches({"source": "ci"})


def test_a_tested_pattern_is_not_kept() -> None:
    before = patterns._CACHE.size()
    for index in range(50):
        assert matches({"source": [f"tested-{index}"]}, {"source": f"tested-{index}"})
    assert patterns._CACHE.size() == before


def test_the_compiled_pattern_cache_is_bounded_by_entries_and_by_characters() -> None:
    cache = _CompiledPatterns(entries=3, characters=100)
    compiled = {text: compile_pattern(text) for text in (sized(30), sized(31), sized(32))}
    for text, pattern in compiled.items():
        cache.put(text, pattern)
    assert cache.size() == (3, 93)
    assert cache.get(sized(30)) is compiled[sized(30)]  # now the most recently used
    cache.put(sized(33), compile_pattern(sized(33)))  # a fourth entry: the oldest goes
    assert cache.size() == (3, 95)
    assert cache.get(sized(31)) is None and cache.get(sized(32)) is not None
    # Least recently used first: 30, 33, 32. A 60 is one entry too many, then 25 characters.
    cache.put(sized(60), compile_pattern(sized(60)))
    assert cache.size() == (2, 92)
    assert [cache.get(sized(n)) is not None for n in (30, 33, 32, 60)] == [0, 0, 1, 1]
    cache.put(sized(101), compile_pattern(sized(101)))  # larger than it all: not kept
    assert cache.size() == (2, 92)
    for index in range(4):
        cache.put(f'{{"n":[{index}]}}', compile_pattern({"n": [index]}))
    assert cache.size()[0] == 3
    cache.clear()
    assert cache.size() == (0, 0)
