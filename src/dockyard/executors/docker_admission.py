"""What a worker lets a ``docker`` definition do, judged before anything reaches the engine.

Whoever may register a definition may ask for anything the document format allows; the worker's
owner bounds it here with the worker's policy (:mod:`dockyard.policy`), at run time, so that
one definition runs on a laptop that allows it and is refused by a shared worker that does not:

- ``network_mode: host`` only where ``docker_host_network`` (``DOCKYARD_DOCKER_HOST_NETWORK``)
  allows it: a container on the host's network reaches what the host reaches and, with
  ``NET_RAW``, sees its traffic;
- images only from the registries ``docker_registries`` (``DOCKYARD_DOCKER_REGISTRIES``) lists,
  when it lists any, checked before any pull;
- a registry password only from a worker variable ``credential_env``
  (``DOCKYARD_CREDENTIAL_ENV``) allows, never from the rest of the worker's environment.

A refusal fails the attempt as not retryable: another attempt on the same worker would be
refused again.
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.domain.outcomes import Outcome
from dockyard.domain.records import DockerSpec
from dockyard.domain.specs.docker import image_registry, normal_registry
from dockyard.executors.request_signing import CredentialRefused, Credentials
from dockyard.policy import POLICY_ENVIRONMENT, WorkerPolicy

__all__ = ["Refused", "admit"]


class Refused(Exception):
    """The worker's policy refuses what the definition asks for."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text

    def outcome(self) -> Outcome:
        """The attempt's end: failed, and not worth a retry."""
        return Outcome.failed(reason=self.reason, status_reason=self.text).with_retry(False)


def admit(
    spec: DockerSpec, policy: WorkerPolicy, credentials: Mapping[str, str]
) -> dict[str, str] | None:
    """The registry login to pull ``spec``'s image with (None: none), or :class:`Refused`."""
    if spec.network_mode == "host" and not policy.docker_host_network:
        variable = POLICY_ENVIRONMENT["docker_host_network"]
        raise Refused(
            "HostNetworkDenied",
            f"network_mode host is not allowed on this worker (its owner allows it with"
            f" {variable}=true)",
        )
    if policy.docker_registries is not None:
        registry = image_registry(spec.image)
        allowed = {normal_registry(name) for name in policy.docker_registries}
        if registry not in allowed:
            variable = POLICY_ENVIRONMENT["docker_registries"]
            listed = ", ".join(sorted(allowed)) or "none"
            raise Refused(
                "RegistryDenied",
                f"image {spec.image} comes from registry {registry}, which this worker's"
                f" {variable} does not list ({listed})",
            )
    if spec.registry_username is None:
        return None
    name = spec.registry_password_env
    return {"username": spec.registry_username, "password": _credential(name, policy, credentials)}


def _credential(name: str | None, policy: WorkerPolicy, credentials: Mapping[str, str]) -> str:
    """The value of credential variable ``name`` ("" when none is named)."""
    if name is None:
        return ""
    try:  # a password leaves in clear: only what credential_env lists, never SigV4's defaults
        value = Credentials(credentials, policy.credential_env).get(name)
    except CredentialRefused:
        variable = POLICY_ENVIRONMENT["credential_env"]
        raise Refused(
            "CredentialDenied",
            f"registry_password_env names {name}, which is not a credential this worker allows"
            f" (credential_env, {variable})",
        ) from None
    if value is None:
        raise Refused(
            "NoSecret", f"registry_password_env names {name}, which is not set on this worker"
        )
    return value
