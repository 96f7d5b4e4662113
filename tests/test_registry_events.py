"""Image pushes: Docker Distribution notifications and image references (dockyard.domain.registry).

Where the cases come from:

- The envelope of distribution/distribution ``docs/content/about/notifications.md`` ("An example of
  a full event"): a manifest push without a tag and two layer pushes, sent with
  ``application/vnd.docker.distribution.events.v2+json``; its pull example (a tagged manifest).
- /work/shared/REAL-COMPONENTS.md: Distribution 2.8 sends ``...events.v1+json``, layer pushes as
  ``application/octet-stream`` without a tag, and the manifest push of ``jobs/busybox:v1`` with
  ``request.host`` ``127.0.0.1:5000``.
- /work/shared/reference/aws-semantics.md §6.1: the ECR ``ECR Image Action`` example event, verbatim.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dockyard.domain.registry import (
    MEDIA_TYPES,
    ImagePush,
    parse_notifications,
    push_detail,
    pushed_image,
)
from dockyard.errors import ValidationError
from tests.conftest import ECR_EVENT

V2 = "application/vnd.docker.distribution.events.v2+json"
V1 = "application/vnd.docker.distribution.events.v1+json"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = "application/vnd.docker.container.image.rootfs.diff+x-gtar"
MANIFEST_DIGEST = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
LAYER_DIGEST = "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5"
REQUEST = {
    "id": "asdfasdf",
    "addr": "client.local",
    "host": "registrycluster.local",
    "method": "PUT",
    "useragent": "test/0.1",
}


def doc_event(number: int, media_type: str, digest: str, kind: str, length: int) -> dict[str, Any]:
    return {
        "id": f"asdf-asdf-asdf-asdf-{number}",
        "timestamp": "2006-01-02T15:04:05Z",
        "action": "push",
        "target": {
            "mediaType": media_type,
            "digest": digest,
            "length": length,
            "repository": "library/test",
            "url": f"https://example.com/v2/library/test/{kind}/{digest}",
        },
        "request": dict(REQUEST),
        "actor": {"name": "test-actor"},
        "source": {"addr": "hostname.local:port"},
    }


#: notifications.md, "An example of a full event" (the manifest URL names the layer digest there).
DOC_ENVELOPE: dict[str, Any] = {
    "events": [
        doc_event(0, MANIFEST_V2, MANIFEST_DIGEST, "manifests", 1),
        doc_event(1, LAYER, LAYER_DIGEST, "blobs", 2),
        doc_event(2, LAYER, LAYER_DIGEST, "blobs", 3),
    ]
}
DOC_ENVELOPE["events"][0]["target"]["url"] = (
    f"https://example.com/v2/library/test/manifests/{LAYER_DIGEST}"
)

#: notifications.md, the pull of a manifest.
DOC_PULL: dict[str, Any] = {
    "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
    "timestamp": "2016-03-09T14:44:26.402973972-08:00",
    "action": "pull",
    "target": {
        "mediaType": MANIFEST_V2,
        "digest": MANIFEST_DIGEST,
        "size": 708,
        "length": 708,
        "repository": "hello-world",
        "url": f"http://192.168.100.227:5000/v2/hello-world/manifests/{MANIFEST_DIGEST}",
        "tag": "latest",
    },
    "request": {
        "id": "6df24a34-0959-4923-81ca-14f09767db19",
        "addr": "192.168.64.11:42961",
        "host": "192.168.100.227:5000",
        "method": "GET",
        "useragent": "curl/7.38.0",
    },
    "actor": {},
    "source": {"addr": "xtal.local:5000", "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4"},
}

#: notifications.md: a delete carries only the digest and the repository.
DOC_DELETE: dict[str, Any] = {
    "action": "delete",
    "target": {
        "digest": "sha256:d89e1bee20d9cb344674e213b581f14fbd8e70274ecf9d10c514bab78a307845",
        "repository": "library/test",
    },
}

ECR_IMAGE = (
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name:latest"
    "@sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"
)


def tagged(envelope: dict[str, Any], tag: str = "latest") -> dict[str, Any]:
    """The envelope with a tag on its first event's target (a push by ``docker push NAME:TAG``)."""
    envelope = copy.deepcopy(envelope)
    envelope["events"][0]["target"]["tag"] = tag
    return envelope


def body(envelope: object) -> bytes:
    return json.dumps(envelope).encode()


def field_of(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return error.value.field


# -- parse_notifications ---------------------------------------------------------------------


def test_documented_envelope_with_a_tag_gives_one_push() -> None:
    pushes = parse_notifications(body(tagged(DOC_ENVELOPE)), V2)
    assert pushes == [
        ImagePush(
            registry="example.com",
            repository="library/test",
            tag="latest",
            digest=MANIFEST_DIGEST,
            media_type=MANIFEST_V2,
            pushed_at="2006-01-02T15:04:05Z",
            actor="test-actor",
        )
    ]


def test_documented_envelope_as_is_pushes_nothing() -> None:
    # Its manifest push has no tag (a push by digest), the rest are layers: no image was tagged.
    assert parse_notifications(body(DOC_ENVELOPE), V2) == []


def test_mixed_envelope_keeps_only_the_tagged_manifest_push() -> None:
    manifest, layer, _ = tagged(DOC_ENVELOPE, "v2")["events"]
    envelope = {"events": [DOC_PULL, layer, manifest, DOC_DELETE]}
    pushes = parse_notifications(json.dumps(envelope), V2)
    assert [(push.repository, push.tag, push.digest) for push in pushes] == [
        ("library/test", "v2", MANIFEST_DIGEST)
    ]


def test_distribution_2_8_push_over_v1_media_type() -> None:
    # REAL-COMPONENTS.md: `docker push 127.0.0.1:5000/jobs/busybox:v1` against registry 2.8.
    layer = {
        "action": "push",
        "timestamp": "2026-05-01T10:00:00.5Z",
        "target": {
            "mediaType": "application/octet-stream",
            "digest": LAYER_DIGEST,
            "repository": "jobs/busybox",
        },
        "request": {"host": "127.0.0.1:5000", "method": "PUT"},
    }
    manifest = {
        "action": "push",
        "timestamp": "2026-05-01T10:00:01Z",
        "target": {
            "mediaType": MANIFEST_V2,
            "digest": MANIFEST_DIGEST,
            "repository": "jobs/busybox",
            "tag": "v1",
        },
        "request": {"host": "127.0.0.1:5000", "method": "PUT"},
        "actor": {},
    }
    assert parse_notifications(body({"events": [layer]}), V1) == []
    (push,) = parse_notifications(body({"events": [manifest]}), f"{V1}; charset=utf-8")
    assert push.registry == "127.0.0.1:5000"  # no target.url: the request's host
    assert push.image == f"127.0.0.1:5000/jobs/busybox:v1@{MANIFEST_DIGEST}"
    assert push.actor is None
    assert push.pushed_at == "2026-05-01T10:00:01Z"


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ],
)
def test_every_manifest_media_type_is_an_image(media_type: str) -> None:
    envelope = tagged(DOC_ENVELOPE)
    envelope["events"][0]["target"]["mediaType"] = media_type
    (push,) = parse_notifications(body(envelope), "application/json")
    assert push.media_type == media_type


def test_registry_url_with_a_port_keeps_it() -> None:
    envelope = tagged(DOC_ENVELOPE)
    envelope["events"][0]["target"]["url"] = (
        f"http://reg.local:5000/v2/library/test/manifests/{MANIFEST_DIGEST}"
    )
    (push,) = parse_notifications(body(envelope), V2)
    assert push.image == f"reg.local:5000/library/test:latest@{MANIFEST_DIGEST}"


def test_media_types_are_the_event_envelopes() -> None:
    assert {V1, V2, "application/json"} == MEDIA_TYPES


@pytest.mark.parametrize("content_type", [None, "", "text/plain", MANIFEST_V2])
def test_wrong_content_type_is_refused(content_type: str | None) -> None:
    with pytest.raises(ValidationError) as error:
        parse_notifications(body(tagged(DOC_ENVELOPE)), content_type)
    assert field_of(error) == "content-type"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe\xfa", "body"),
        (b"[]", "body"),
        (b'{"event": []}', "events"),
        (b'{"events": {"action": "push"}}', "events"),
        (b'{"events": [{"action": "pull"}, "push"]}', "events[1]"),
    ],
)
def test_malformed_body_names_the_field(payload: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_notifications(payload, V2)
    assert field_of(error) == field


@pytest.mark.parametrize(
    ("target_key", "value", "field"),
    [
        ("digest", None, "events[3].target.digest"),
        ("digest", "fea8895f", "events[3].target.digest"),
        ("repository", None, "events[3].target.repository"),
        ("repository", "Library/Test", "events[3].target.repository"),
        ("tag", "-bad", "events[3].target.tag"),
    ],
)
def test_malformed_manifest_push_names_the_event(target_key: str, value: Any, field: str) -> None:
    manifest = tagged(DOC_ENVELOPE)["events"][0]
    if value is None:
        del manifest["target"][target_key]
    else:
        manifest["target"][target_key] = value
    envelope = {"events": [DOC_PULL, DOC_DELETE, DOC_ENVELOPE["events"][1], manifest]}
    with pytest.raises(ValidationError) as error:
        parse_notifications(body(envelope), V2)
    assert field_of(error) == field


def test_manifest_push_without_any_host_is_refused() -> None:
    manifest = tagged(DOC_ENVELOPE)["events"][0]
    del manifest["target"]["url"]
    del manifest["request"]
    with pytest.raises(ValidationError) as error:
        parse_notifications(body({"events": [manifest]}), V2)
    assert field_of(error) == "events[0].request.host"


# -- events ----------------------------------------------------------------------------------


def test_ecr_example_event_gives_the_image() -> None:
    assert pushed_image(ECR_EVENT) == ECR_IMAGE


def test_ecr_push_without_a_tag_is_by_digest() -> None:
    event = copy.deepcopy(ECR_EVENT)
    del event["detail"]["image-tag"]
    assert pushed_image(event) == (
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name"
        "@sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"
    )


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("result", "FAILURE", "detail.result"),
        ("action-type", "DELETE", "detail.action-type"),
        ("image-digest", None, "detail.image-digest"),
        ("repository-name", "", "detail.repository-name"),
    ],
)
def test_ecr_event_that_is_not_a_successful_push_is_refused(key: str, value: Any, why: str) -> None:
    event = copy.deepcopy(ECR_EVENT)
    event["detail"][key] = value
    with pytest.raises(ValidationError) as error:
        pushed_image(event)
    assert field_of(error) == "event"
    assert why in error.value.rule


def test_dockyard_image_pushed_event_round_trips() -> None:
    (push,) = parse_notifications(body(tagged(DOC_ENVELOPE, "1.2.3")), V2)
    detail = push_detail(push)
    assert detail == {
        "registry": "example.com",
        "repository": "library/test",
        "tag": "1.2.3",
        "digest": MANIFEST_DIGEST,
        "media-type": MANIFEST_V2,
        "image": f"example.com/library/test:1.2.3@{MANIFEST_DIGEST}",
        "actor": "test-actor",
        "pushed-at": "2006-01-02T15:04:05Z",
    }
    event = {
        "version": "0",
        "id": "0d2f3a52-0000-4000-8000-000000000001",
        "detail-type": "Image Pushed",
        "source": "dockyard.registry",
        "account": "",
        "time": "2006-01-02T15:04:05Z",
        "region": "",
        "resources": [],
        "detail": json.loads(json.dumps(detail)),
    }
    assert pushed_image(event) == detail["image"]


@pytest.mark.parametrize(
    "event",
    [
        {
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {},
        },
        {"source": "dockyard.job", "detail-type": "Job State Change", "detail": {"jobId": "j"}},
        {"source": "dockyard.registry", "detail-type": "Image Deleted", "detail": {}},
        {"source": "dockyard.registry", "detail-type": "Image Pushed", "detail": {"tag": "v1"}},
        {"source": "aws.ecr", "detail-type": "ECR Image Action"},
        {"source": "aws.ecr", "detail-type": "ECR Image Scan", "detail": ECR_EVENT["detail"]},
    ],
)
def test_events_that_announce_no_push_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as error:
        pushed_image(event)
    assert field_of(error) == "event"
