"""Dockyard against its peers (``python -m bench.peers``): see bench/README.md.

The orchestrator (:mod:`bench.peers.orchestrator`) runs in the project's environment; each
``*_driver`` module runs with its peer's own interpreter (``bench/.venvs/<peer>``) and imports
only the standard-library :mod:`bench.peers.harness` besides its peer. Nothing here is imported
by the drivers: keep this package's ``__init__`` empty of imports.
"""
