"""Executor kinds in definition documents: one module per kind, and the table that lists them.

Each kind module (``process``, ``python``, ``docker``, ``http``, ``aws_lambda``) holds the kind's
field set, its parser and its document writer, bundled as an
:class:`~dockyard.domain.specs.kind.ExecutorKind`; :mod:`~dockyard.domain.specs.registry` lists
them. The spec records of the built-in kinds stay in :mod:`dockyard.domain.records`, where users
and the layers above import them; a new kind may keep its record in its own module, since
``DefinitionSpec.executor`` only asks for a ``kind``. Pure standard library, like all the domain.
"""
