"""Input transformers (dockyard.domain.transform), checked against EventBridge's documentation.

Where the cases come from:

- The EventBridge user guide, "Amazon EventBridge input transformation": the example EC2 event, its
  input paths (``timestamp``, ``instance``, ``state``) and the template -> output table, verbatim
  (its console-only and CloudWatch Logs rows excepted); the predefined variables
  (``aws.events.event`` is the event without ``detail``, ``aws.events.event.json`` the whole
  event).
- The EventBridge API reference, ``InputTransformer``: at most 100 paths, names not starting with
  ``AWS.``, a template of 1 to 8192 characters, no placeholder as an object key, and its examples.
- Missing paths (null outside strings, nothing inside them) and the ECR push event of
  /work/shared/reference/aws-semantics.md §6.1 were worked out by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.domain.transform import (
    InputTransformer,
    json_path,
    parse_input_transformer,
    transform,
)
from dockyard.errors import ValidationError
from tests.conftest import ECR_EVENT

#: The EventBridge user guide's example EC2 event.
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
EC2_PATHS = {"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state"}
INGESTED = "2015-11-11T21:29:55.123Z"


def run(
    template: str, paths: dict[str, str] | None = None, event: dict[str, Any] | None = None
) -> Any:
    transformer = parse_input_transformer(
        {"input_paths": EC2_PATHS if paths is None else paths, "input_template": template}
    )
    return transform(
        transformer,
        EC2_EVENT if event is None else event,
        rule_name="example",
        ingestion_time=INGESTED,
    )


def refused(document: Any) -> ValidationError:
    with pytest.raises(ValidationError) as error:
        parse_input_transformer(document)
    return error.value


# -- the user guide's table ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "output"),
    [
        # Simple string
        ('"instance <instance> is in <state>"', "instance i-0123456789 is in RUNNING"),
        # String with escaped quotes
        ('"instance \\"<instance>\\" is in <state>"', 'instance "i-0123456789" is in RUNNING'),
        # Simple JSON
        (
            '{\n  "instance" : <instance>,\n  "state": <state>\n}',
            {"instance": "i-0123456789", "state": "RUNNING"},
        ),
        # JSON with strings and variables
        (
            '{\n "instance" : <instance>,\n "state": "<state>",\n'
            ' "instanceStatus": "instance \\"<instance>\\" is in <state>"\n}',
            {
                "instance": "i-0123456789",
                "state": "RUNNING",
                "instanceStatus": 'instance "i-0123456789" is in RUNNING',
            },
        ),
        # JSON with a mix of variables and static information
        (
            '{\n  "instance" : <instance>,\n  "state": [ 9, <state>, true ],\n  "Transformed" : "Yes"\n}',
            {"instance": "i-0123456789", "state": [9, "RUNNING", True], "Transformed": "Yes"},
        ),
        # Including reserved variables in a string
        ('"<aws.events.rule-name> triggered"', "example triggered"),
    ],
)
def test_user_guide_examples(template: str, output: Any) -> None:
    assert run(template) == output


def test_user_guide_reserved_variables_in_json() -> None:
    template = (
        '{\n  "instance" : <instance>,\n  "state": <state>,\n  "ruleArn" : <aws.events.rule-arn>,\n'
        '  "ruleName" : <aws.events.rule-name>,\n  "originalEvent" : <aws.events.event>\n}'
    )
    transformer = parse_input_transformer({"InputPathsMap": EC2_PATHS, "InputTemplate": template})
    output = transform(
        transformer,
        EC2_EVENT,
        rule_name="example",
        ingestion_time=INGESTED,
        rule_arn="arn:aws:events:us-east-2:123456789012:rule/example",
    )
    without_detail = {key: value for key, value in EC2_EVENT.items() if key != "detail"}
    assert output == {
        "instance": "i-0123456789",
        "state": "RUNNING",
        "ruleArn": "arn:aws:events:us-east-2:123456789012:rule/example",
        "ruleName": "example",
        "originalEvent": without_detail,
    }


def test_api_reference_examples() -> None:
    paths = {"instance": "$.detail.instance-id", "status": "$.detail.state"}
    # Outside quotes a string keeps its quotes, so a bare text template is not JSON: it stays text.
    assert run("<instance> is in state <status>", paths) == '"i-0123456789" is in state "RUNNING"'
    # "<instance> is in state \"<status>\"" in the API's JSON: the quoted placeholder is text.
    assert run('<instance> is in state "<status>"', paths) == '"i-0123456789" is in state "RUNNING"'
    assert run(
        '{"myInstance": <instance>,"myStatus": "<instance> is in state \\"<status>\\""}', paths
    ) == {
        "myInstance": "i-0123456789",
        "myStatus": 'i-0123456789 is in state "RUNNING"',
    }


# -- values ----------------------------------------------------------------------------------


def test_predefined_variables() -> None:
    template = (
        '{"rule": <aws.events.rule-name>, "arn": <aws.events.rule-arn>, '
        '"at": <aws.events.event.ingestion-time>, "event": <aws.events.event.json>, '
        '"summary": "<aws.events.rule-name> got <aws.events.event.json>"}'
    )
    output = run(template, {})
    assert output["rule"] == "example"
    assert output["arn"] == "dockyard:rule/example"
    assert output["at"] == INGESTED
    assert output["event"] == EC2_EVENT
    # Inside a string the event is its JSON text, escaped: the output is still JSON.
    prefix = "example got "
    assert output["summary"].startswith(prefix)
    assert json.loads(output["summary"][len(prefix) :]) == EC2_EVENT


def test_the_whole_event_alone() -> None:
    assert run("<aws.events.event.json>", {}) == EC2_EVENT
    assert run("<all>", {"all": "$"}) == EC2_EVENT


def test_missing_paths_are_null_outside_strings_and_empty_inside() -> None:
    paths = {
        "missing": "$.detail.nothing",
        "deep": "$.detail.state.deeper",
        "far": "$.resources[5]",
    }
    template = '{"a": <missing>, "b": <deep>, "c": <far>, "d": "[<missing>]"}'
    assert run(template, paths) == {"a": None, "b": None, "c": None, "d": "[]"}


def test_array_index_paths() -> None:
    paths = {"first": "$.resources[0]", "detail": "$['detail']['instance-id']"}
    assert run('{"arn": <first>, "id": "<detail>"}', paths) == {
        "arn": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111",
        "id": "i-0123456789",
    }


def test_values_keep_their_json_types() -> None:
    event = {
        "detail": {"count": 3, "ok": False, "tags": ["a", "b"], "meta": {"k": "v"}, "none": None}
    }
    paths = {name: f"$.detail.{name}" for name in ("count", "ok", "tags", "meta", "none")}
    template = (
        '{"count": <count>, "ok": <ok>, "tags": <tags>, "meta": <meta>, "none": <none>, '
        '"text": "<count> <ok> <tags> <meta>"}'
    )
    assert run(template, paths, event) == {
        "count": 3,
        "ok": False,
        "tags": ["a", "b"],
        "meta": {"k": "v"},
        "none": None,
        "text": '3 false ["a","b"] {"k":"v"}',
    }


def test_strings_are_escaped_inside_strings() -> None:
    event = {"detail": {"note": 'say "hi"\\ \n<b>', "name": "ünïcode"}}
    paths = {"note": "$.detail.note", "name": "$.detail.name"}
    assert run('{"note": "<note>", "raw": <note>, "name": "<name>"}', paths, event) == {
        "note": 'say "hi"\\ \n<b>',
        "raw": 'say "hi"\\ \n<b>',
        "name": "ünïcode",
    }


def test_ecr_push_to_a_job_payload() -> None:
    paths = {"repo": "$.detail.repository-name", "tag": "$.detail.image-tag"}
    assert run('{"image": "<repo>:<tag>", "tag": <tag>}', paths, ECR_EVENT) == {
        "image": "my-repository-name:latest",
        "tag": "latest",
    }
    assert run("deploy <tag>", paths, ECR_EVENT) == 'deploy "latest"'
    assert run("plain text", paths, ECR_EVENT) == "plain text"
    assert run("42", paths, ECR_EVENT) == 42


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", EC2_EVENT),
        ("$.detail", EC2_EVENT["detail"]),
        ("$.detail.instance-id", "i-0123456789"),
        ("$['detail-type']", "EC2 Instance State-change Notification"),
        ('$["detail"].state', "RUNNING"),
        ("$.resources[0]", "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"),
        ("$.resources[1]", None),
        ("$.resources.first", None),
        ("$.detail[0]", None),
        ("$.nothing.at.all", None),
    ],
)
def test_json_path(path: str, value: Any) -> None:
    assert json_path(EC2_EVENT, path) == value


def test_json_path_refuses_what_it_cannot_evaluate() -> None:
    for path in ("detail.state", "$.detail.*", "$..state", "$.resources[-1]", "$.a b"):
        with pytest.raises(ValidationError):
            json_path(EC2_EVENT, path)


# -- definitions -----------------------------------------------------------------------------


def test_both_spellings_define_the_same_transformer() -> None:
    ours = parse_input_transformer({"input_paths": EC2_PATHS, "input_template": "<state>"})
    theirs = parse_input_transformer({"InputPathsMap": EC2_PATHS, "InputTemplate": "<state>"})
    assert ours == theirs == InputTransformer(input_paths=EC2_PATHS, template="<state>")
    assert parse_input_transformer({"input_template": "static"}).input_paths == {}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            {"input_paths": {"id": "$.id"}, "input_template": "<ID>"},
            "input_transformer.input_template",
        ),
        ({"input_template": "<aws.events.rule-id>"}, "input_transformer.input_template"),
        (
            {"input_paths": {"id": "detail.id"}, "input_template": "<id>"},
            "input_transformer.input_paths.id",
        ),
        (
            {"input_paths": {"id": "$.detail.*"}, "input_template": "<id>"},
            "input_transformer.input_paths.id",
        ),
        (
            {"input_paths": {"aws.events.rule-name": "$.id"}, "input_template": "x"},
            "input_transformer.input_paths.aws.events.rule-name",
        ),
        (
            {"InputPathsMap": {"AWS.mine": "$.id"}, "InputTemplate": "x"},
            "input_transformer.InputPathsMap.AWS.mine",
        ),
        (
            {"input_paths": {"a b": "$.id"}, "input_template": "x"},
            "input_transformer.input_paths.a b",
        ),
        ({"input_paths": {"id": "$.id"}}, "input_transformer.input_template"),
        ({"input_template": ""}, "input_transformer.input_template"),
        ({"input_template": "x" * 8193}, "input_transformer.input_template"),
        ({"input_paths": ["$.id"], "input_template": "x"}, "input_transformer.input_paths"),
        ({"input_template": "x", "InputPathsMap": {}}, "input_transformer.input_template"),
        ({"input_template": "x", "input_path": "$"}, "input_transformer.input_path"),
        ("<id>", "input_transformer"),
    ],
)
def test_invalid_definitions_name_the_field(document: Any, field: str) -> None:
    assert refused(document).field == field


def test_at_most_100_paths() -> None:
    paths = {f"v{n}": f"$.detail.v{n}" for n in range(100)}
    assert (
        len(parse_input_transformer({"input_paths": paths, "input_template": "x"}).input_paths)
        == 100
    )
    paths["v100"] = "$.detail.v100"
    error = refused({"input_paths": paths, "input_template": "x"})
    assert error.field == "input_transformer.input_paths"
    assert "100" in error.rule


@pytest.mark.parametrize("template", ["{<id>: 1}", '{"<id>": 1}', '[{"a": {"x-<id>": <id>}}]'])
def test_a_placeholder_is_never_an_object_key(template: str) -> None:
    error = refused({"input_paths": {"id": "$.id"}, "input_template": template})
    assert error.field == "input_transformer.input_template"
    assert "key" in error.rule


def test_field_prefix_is_the_callers() -> None:
    with pytest.raises(ValidationError) as error:
        parse_input_transformer({"input_template": "<nope>"}, "targets[0].input_transformer")
    assert error.value.field == "targets[0].input_transformer.input_template"


def test_angle_brackets_that_are_no_placeholder_stay_text() -> None:
    assert run('"a < b and c > d"', {}) == "a < b and c > d"
    assert run("<$.detail>", {}) == "<$.detail>"
