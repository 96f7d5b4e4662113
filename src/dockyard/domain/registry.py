"""Image pushes: Docker Distribution notifications in, image references out.

A registry (Docker Distribution, ``registry:2``) POSTs an envelope ``{"events": [...]}`` to a
webhook for every push, pull and delete, of manifests and of blobs (layers) alike, several events
to an envelope. :func:`parse_notifications` keeps what a trigger wants: the *tagged manifest
pushes*, each an :class:`ImagePush`. A layer push, a pull, a delete or a manifest pushed by digest
only (no tag) is not an image being published, and is dropped without complaint; an event that
claims to be a tagged manifest push but lacks what one carries (a digest, a repository) is refused,
naming it (``events[3].target.digest``).

Dockyard announces each push as an event of source ``dockyard.registry``, detail-type ``Image
Pushed`` (:func:`push_detail`). :func:`pushed_image` reads the image reference
``registry/repository:tag@digest`` from such an event or from ECR's own ``ECR Image Action``, so a
rule can start a job on the image just pushed whichever registry it came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dockyard.errors import ValidationError

__all__ = [
    "DOCKYARD_REGISTRY_SOURCE",
    "IMAGE_PUSHED",
    "MANIFEST_MEDIA_TYPES",
    "MEDIA_TYPES",
    "ImagePush",
    "parse_notifications",
    "push_detail",
    "pushed_image",
]

#: The content types of a notification envelope: v1 (Distribution 2.x), v2 (3.x), and plain JSON.
MEDIA_TYPES: frozenset[str] = frozenset(
    {
        "application/vnd.docker.distribution.events.v1+json",
        "application/vnd.docker.distribution.events.v2+json",
        "application/json",
    }
)
#: Manifests, as opposed to blobs: pushing one of these with a tag publishes an image.
MANIFEST_MEDIA_TYPES: frozenset[str] = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
DOCKYARD_REGISTRY_SOURCE = "dockyard.registry"
IMAGE_PUSHED = "Image Pushed"
ECR_SOURCE = "aws.ecr"
ECR_IMAGE_ACTION = "ECR Image Action"

# The grammar of github.com/distribution/reference (and the OCI image spec, for digests).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]+")


@dataclass(frozen=True, slots=True)
class ImagePush:
    """One tagged manifest pushed to a registry."""

    #: ``host[:port]`` the image is pulled from: the netloc of ``target.url``, else ``request.host``.
    registry: str
    repository: str
    tag: str
    digest: str
    #: The manifest's media type (a Docker v2 manifest, an OCI index, ...).
    media_type: str
    #: The event's timestamp, as the registry wrote it.
    pushed_at: str | None
    #: ``actor.name``: who pushed, when the registry authenticates.
    actor: str | None

    @property
    def image(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}@{self.digest}"


# -- Docker Distribution notifications -------------------------------------------------------


def parse_notifications(body: bytes | str, content_type: str | None) -> list[ImagePush]:
    """The tagged manifest pushes of a notification request, in the envelope's order."""
    _check_content_type(content_type)
    events = _envelope_events(body)
    pushes = []
    for index, event in enumerate(events):
        push = _image_push(event, f"events[{index}]")
        if push is not None:
            pushes.append(push)
    return pushes


def _check_content_type(content_type: str | None) -> None:
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    if essence not in MEDIA_TYPES:
        raise ValidationError("content-type", f"must be one of {', '.join(sorted(MEDIA_TYPES))}")


def _envelope_events(body: bytes | str) -> list[Any]:
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise ValidationError(
            "body", f"must be a JSON envelope {{'events': [...]}}: {error}"
        ) from None
    if not isinstance(envelope, dict):
        raise ValidationError("body", "must be a JSON object {'events': [...]}")
    events = envelope.get("events")
    if not isinstance(events, list):
        raise ValidationError("events", "must be a list of events")
    return events


def _image_push(event: object, where: str) -> ImagePush | None:
    """The push ``event`` announces, or None when it is not a tagged manifest push."""
    if not isinstance(event, dict):
        raise ValidationError(where, "must be an object")
    if event.get("action") != "push":
        return None
    target = event.get("target")
    if not isinstance(target, dict):
        raise ValidationError(f"{where}.target", "must be an object")
    media_type = target.get("mediaType")
    tag = target.get("tag")
    if not isinstance(media_type, str) or media_type not in MANIFEST_MEDIA_TYPES:
        return None
    if tag is None or tag == "":
        return None
    return ImagePush(
        registry=_registry_host(event, target, where),
        repository=_matching(target.get("repository"), _REPOSITORY, f"{where}.target.repository"),
        tag=_matching(tag, _TAG, f"{where}.target.tag"),
        digest=_matching(target.get("digest"), _DIGEST, f"{where}.target.digest"),
        media_type=media_type,
        pushed_at=_optional_string(event.get("timestamp"), f"{where}.timestamp"),
        actor=_actor(event.get("actor"), where),
    )


def _registry_host(event: Mapping[str, Any], target: Mapping[str, Any], where: str) -> str:
    url = target.get("url")
    if isinstance(url, str) and url:
        netloc = urlsplit(url).netloc.rpartition("@")[2]
        if netloc:
            return netloc
    request = event.get("request")
    host = request.get("host") if isinstance(request, dict) else None
    if not isinstance(host, str) or not host:
        raise ValidationError(f"{where}.request.host", "is required when target.url has no host")
    return host


def _actor(actor: object, where: str) -> str | None:
    if actor is None:
        return None
    if not isinstance(actor, dict):
        raise ValidationError(f"{where}.actor", "must be an object")
    name = _optional_string(actor.get("name"), f"{where}.actor.name")
    return name or None


def _matching(value: object, pattern: re.Pattern[str], field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "is required: a non-empty string")
    if not pattern.fullmatch(value):
        raise ValidationError(field, f"must match {pattern.pattern}")
    return value


def _optional_string(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    return value


# -- events ----------------------------------------------------------------------------------


def push_detail(push: ImagePush) -> dict[str, Any]:
    """The ``detail`` of the ``dockyard.registry`` / ``Image Pushed`` event announcing ``push``."""
    return {
        "registry": push.registry,
        "repository": push.repository,
        "tag": push.tag,
        "digest": push.digest,
        "media-type": push.media_type,
        "image": push.image,
        "actor": push.actor,
        "pushed-at": push.pushed_at,
    }


def pushed_image(event: Mapping[str, Any]) -> str:
    """``registry/repository:tag@digest`` (``registry/repository@digest`` untagged) of a push event.

    Reads Dockyard's ``Image Pushed`` and ECR's successful ``PUSH`` actions; refuses anything else.
    """
    if not isinstance(event, Mapping):
        raise ValidationError("event", "must be an object")
    source = event.get("source")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise ValidationError("event", "has no detail object")
    if source == DOCKYARD_REGISTRY_SOURCE:
        _expect(event.get("detail-type"), IMAGE_PUSHED, "detail-type")
        return _dockyard_image(detail)
    if source == ECR_SOURCE:
        _expect(event.get("detail-type"), ECR_IMAGE_ACTION, "detail-type")
        return _ecr_image(event, detail)
    raise ValidationError(
        "event",
        f"source {source!r} does not announce image pushes "
        f"(expected {DOCKYARD_REGISTRY_SOURCE!r} or {ECR_SOURCE!r})",
    )


def _dockyard_image(detail: Mapping[str, Any]) -> str:
    registry, repository, tag, digest = (
        _required(detail, key, "detail") for key in ("registry", "repository", "tag", "digest")
    )
    return f"{registry}/{repository}:{tag}@{digest}"


def _ecr_image(event: Mapping[str, Any], detail: Mapping[str, Any]) -> str:
    _expect(detail.get("action-type"), "PUSH", "detail.action-type")
    _expect(detail.get("result"), "SUCCESS", "detail.result")
    account = _required(event, "account", "event")
    region = _required(event, "region", "event")
    repository = _required(detail, "repository-name", "detail")
    digest = _required(detail, "image-digest", "detail")
    if not _DIGEST.fullmatch(digest):
        raise ValidationError("event", f"detail.image-digest {digest!r} is not a digest")
    tag = detail.get("image-tag")
    if tag is not None and not isinstance(tag, str):
        raise ValidationError("event", "detail.image-tag must be a string")
    image = f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"
    return f"{image}:{tag}@{digest}" if tag else f"{image}@{digest}"


def _expect(value: object, expected: str, where: str) -> None:
    if value != expected:
        raise ValidationError("event", f"{where} is {value!r}, not {expected!r}: not an image push")


def _required(document: Mapping[str, Any], key: str, where: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationError("event", f"{where}.{key} is required (a non-empty string)")
    return value
