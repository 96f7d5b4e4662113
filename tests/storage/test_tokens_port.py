"""The tokens port: tokens stored by the hash of their secret, listed, and revoked once."""

from __future__ import annotations

from dockyard.domain.tokens import Role, Token, generate_secret, hash_secret
from dockyard.storage import Storage
from tests.helpers.loops import Run
from tests.storage.records import T0, at


def test_insert_find_by_hash_all_and_revoke(storage: Storage, run: Run) -> None:
    ci = Token(id="t-ci", name="ci", role=Role.OPERATOR, created_at=at(1))
    admin = Token(id="t-admin", name="admin", role=Role.ADMIN, created_at=T0)
    ci_secret, admin_secret = generate_secret(), generate_secret()
    assert run(storage.tokens.all()) == []
    run(storage.tokens.insert(ci, hash_secret(ci_secret)))
    run(storage.tokens.insert(admin, hash_secret(admin_secret)))
    assert run(storage.tokens.find(hash_secret(ci_secret))) == ci
    assert run(storage.tokens.find(hash_secret(admin_secret))) == admin
    assert run(storage.tokens.find(hash_secret(generate_secret()))) is None
    assert run(storage.tokens.all()) == [admin, ci]  # oldest first, not in insertion order
    revoked = run(storage.tokens.revoke("t-ci", at(5)))
    assert revoked is not None and revoked.revoked_at == at(5)
    assert run(storage.tokens.find(hash_secret(ci_secret))) == revoked  # found, revoked or not
    # Revoked once: a second revoke keeps the first time.
    again = run(storage.tokens.revoke("t-ci", at(9)))
    assert again is not None and again.revoked_at == at(5)
    assert run(storage.tokens.revoke("t-nothing", at(9))) is None
    assert run(storage.tokens.all()) == [admin, revoked]


def test_a_publisher_with_an_expiry_is_stored_and_read_back(storage: Storage, run: Run) -> None:
    registry = Token(
        id="t-registry", name="registry", role=Role.PUBLISHER, created_at=T0, expires_at=at(3600)
    )
    secret = generate_secret()
    run(storage.tokens.insert(registry, hash_secret(secret)))
    assert run(storage.tokens.find(hash_secret(secret))) == registry
    assert run(storage.tokens.all()) == [registry]


def test_a_use_is_recorded_at_most_once_per_interval(storage: Storage, run: Run) -> None:
    """``touch`` writes only over a use older than ``stale_before``: processes sharing a store
    (each with its own cache) write a token's last use about once per interval, not per
    request."""
    ci = Token(id="t-ci", name="ci", role=Role.OPERATOR, created_at=T0)
    secret = hash_secret(generate_secret())
    run(storage.tokens.insert(ci, secret))
    assert run(storage.tokens.find(secret)).last_used_at is None  # type: ignore[union-attr]

    def last_used() -> object:
        (token,) = run(storage.tokens.all())
        return token.last_used_at

    run(storage.tokens.touch("t-ci", at(10), stale_before=at(10 - 60)))
    assert last_used() == at(10)
    run(storage.tokens.touch("t-ci", at(40), stale_before=at(40 - 60)))  # another process
    assert last_used() == at(10)
    run(storage.tokens.touch("t-ci", at(75), stale_before=at(75 - 60)))
    assert last_used() == at(75)
    run(storage.tokens.touch("t-nothing", at(80), stale_before=at(20)))  # unknown: no error
    revoked = run(storage.tokens.revoke("t-ci", at(90)))
    assert revoked is not None and revoked.last_used_at == at(75)
