"""Rules as a resource: create, read, update, enable and disable, delete; their history and dead
list, and retrying what is dead.

A new pattern is measured before it is compiled: longer than
:data:`~dockyard.domain.patterns.MAX_PATTERN_CHARACTERS` it is refused, naming ``event_pattern``.
Only what comes in is measured, so that a rule stored before the limit still loads and changes.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from dockyard.app.core import Resource, requires
from dockyard.app.definitions import find_definition
from dockyard.domain.definitions import check_name
from dockyard.domain.patterns import InvalidEventPattern, check_pattern_size
from dockyard.domain.records import DockerSpec
from dockyard.domain.rule_targets import RegisterRevisionTarget, SubmitJobTarget
from dockyard.domain.rules import Invocation, InvocationState, Rule, RuleSpec, parse_rule
from dockyard.domain.rules import spec_document as rule_spec_document
from dockyard.domain.tokens import Permission
from dockyard.errors import ConflictError, NotFoundError, ValidationError

__all__ = ["Rules"]

READ, OPERATE = Permission.READ, Permission.OPERATE


class Rules(Resource):
    __slots__ = ()

    @requires(OPERATE)
    async def create(self, document: Mapping[str, Any], name: str | None = None) -> Rule:
        """Create a rule from its document (``name`` wins over the document's)."""
        if not isinstance(document, Mapping):
            raise ValidationError("rule", "must be a mapping")
        name = check_name(name if name is not None else document.get("name"), "name")
        _check_pattern_size(document)
        spec, enabled = parse_rule({k: v for k, v in document.items() if k != "name"})
        await self._check_targets(spec)
        now = self._core.clock.now()
        rule = Rule(name=name, spec=spec, enabled=enabled, created_at=now, updated_at=now)
        if not await self._core.storage.rules.insert(rule):
            raise ConflictError(f"rule {name} already exists")
        return rule

    @requires(READ)
    async def get(self, name: str) -> Rule:
        return await self._get(name)

    async def _get(self, name: str) -> Rule:
        rule = await self._core.storage.rules.get(name)
        if rule is None:
            raise NotFoundError("rule", name)
        return rule

    @requires(READ)
    async def list(self) -> builtins.list[Rule]:
        return await self._core.storage.rules.all()

    @requires(OPERATE)
    async def update(self, name: str, changes: Mapping[str, Any]) -> Rule:
        """Change some fields; the others keep their values (``targets`` is replaced whole)."""
        return await self._update(name, changes)

    async def _update(self, name: str, changes: Mapping[str, Any]) -> Rule:
        if not isinstance(changes, Mapping):
            raise ValidationError("rule", "must be a mapping")
        if "name" in changes and changes["name"] != name:
            raise ValidationError("name", "cannot be changed (create a new rule)")
        _check_pattern_size(changes)
        current = await self._get(name)
        document = {**rule_spec_document(current.spec, current.enabled), **changes}
        spec, enabled = parse_rule({k: v for k, v in document.items() if k != "name"})
        if "targets" in changes:
            await self._check_targets(spec)
        rule = replace(current, spec=spec, enabled=enabled, updated_at=self._core.clock.now())
        if not await self._core.storage.rules.replace(rule):
            raise NotFoundError("rule", name)
        return rule

    async def _check_targets(self, spec: RuleSpec) -> None:
        """Refuse targets that could never work: a definition that does not exist, or a new
        revision of one that does not run containers."""
        for index, target in enumerate(spec.targets):
            if isinstance(target, SubmitJobTarget):
                ref, field = target.job.definition, f"targets[{index}].definition"
            elif isinstance(target, RegisterRevisionTarget):
                ref, field = target.definition, f"targets[{index}].definition"
            else:
                continue
            try:
                definition = await find_definition(self, ref)
            except NotFoundError:
                raise ValidationError(
                    field, f"no active definition {ref} (register it first)"
                ) from None
            if isinstance(target, RegisterRevisionTarget) and not isinstance(
                definition.spec.executor, DockerSpec
            ):
                raise ValidationError(
                    field, f"{ref} does not run containers: only docker definitions take an image"
                )

    @requires(OPERATE)
    async def set_enabled(self, name: str, enabled: bool) -> Rule:
        return await self._update(name, {"state": "ENABLED" if enabled else "DISABLED"})

    @requires(OPERATE)
    async def delete(self, name: str) -> Rule:
        rule = await self._get(name)
        if not await self._core.storage.rules.delete(name):
            raise NotFoundError("rule", name)
        return rule

    @requires(READ)
    async def history(
        self, name: str, state: InvocationState | None = None, limit: int = 100
    ) -> builtins.list[Invocation]:
        """The rule's invocations, newest first (``state=DEAD``: its dead list)."""
        await self._get(name)
        return await self._core.storage.rules.invocations(name, state, limit)

    @requires(OPERATE)
    async def retry_invocations(self, name: str, ids: Sequence[str] | None = None) -> int:
        """Put dead invocations (these, or all of the rule's) back to be delivered again."""
        await self._get(name)
        return await self._core.storage.rules.retry_invocations(name, ids, self._core.clock.now())


def _check_pattern_size(document: Mapping[str, Any]) -> None:
    """Refuse the document's ``event_pattern``, if it has one, when it is too long."""
    try:
        check_pattern_size(document.get("event_pattern"))
    except InvalidEventPattern as error:
        raise ValidationError("event_pattern", error.message) from None
