"""The ``lambda`` kind in definition documents: an AWS Lambda ``Invoke``, the payload as its event.

(``lambda`` is a Python keyword, hence the module's name.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockyard.domain.fields import string, word
from dockyard.domain.records import LambdaSpec, SigV4Signing
from dockyard.domain.specs.http import response_cap
from dockyard.domain.specs.kind import ExecutorKind, FieldShape, without_none
from dockyard.domain.specs.signing import SIGNING_SHAPE, parse_signing, signing_document
from dockyard.errors import ValidationError

__all__ = ["LAMBDA"]

_FUNCTION = re.compile(r"[A-Za-z0-9_:.-]{1,170}")
_INVOCATION_TYPES = ("RequestResponse", "Event")


def parse(doc: Mapping[str, Any]) -> LambdaSpec:
    function = doc.get("function")
    if not isinstance(function, str) or not _FUNCTION.fullmatch(function):
        raise ValidationError("function", "must be a Lambda function name or ARN")
    invocation = doc.get("invocation_type", "RequestResponse")
    if invocation not in _INVOCATION_TYPES:
        raise ValidationError("invocation_type", "must be RequestResponse or Event")
    region = word(doc.get("region"), "region")
    endpoint = doc.get("endpoint")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))
    ):
        raise ValidationError("endpoint", "must be an http:// or https:// URL")
    # Signed for the function's own region unless the document says otherwise.
    signing = doc.get("signing", {"kind": "aws-sigv4", "service": "lambda", "region": region})
    parsed = parse_signing(signing)
    if not isinstance(parsed, SigV4Signing):
        raise ValidationError("signing.kind", "must be aws-sigv4 for lambda")
    cap = response_cap(doc)
    qualifier = doc.get("qualifier")
    return LambdaSpec(
        function=function,
        qualifier=None if qualifier is None else string(qualifier, "qualifier"),
        invocation_type=invocation,
        region=region,
        endpoint=endpoint,
        signing=parsed,
        max_response_bytes=cap,
    )


def document(spec: LambdaSpec) -> dict[str, Any]:
    return without_none(
        function=spec.function,
        invocation_type=spec.invocation_type,
        region=spec.region,
        signing=signing_document(spec.signing),
        max_response_bytes=spec.max_response_bytes,
        qualifier=spec.qualifier,
        endpoint=spec.endpoint,
    )


LAMBDA = ExecutorKind(
    name="lambda",
    record=LambdaSpec,
    fields={
        "function": FieldShape(accepts=str),
        "region": FieldShape(accepts=str),
        "qualifier": FieldShape(accepts=str),
        "invocation_type": FieldShape(accepts=str),
        "endpoint": FieldShape(accepts=str),
        "signing": SIGNING_SHAPE,
        "max_response_bytes": FieldShape(accepts=int),
    },
    parse=parse,
    document=document,
)
