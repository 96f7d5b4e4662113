"""Helpers shared by several test modules, one concept a module (``tests/conftest.py`` holds the
fixtures and is past 500 lines): running the ``dockyard`` command, reading claim plans."""
