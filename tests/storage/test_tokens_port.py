"""The tokens port: tokens stored by the hash of their secret, listed, and revoked once."""

from __future__ import annotations

from dockyard.domain.tokens import Role, Token, generate_secret, hash_secret
from dockyard.storage import Storage
from tests.storage.conftest import Run
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
