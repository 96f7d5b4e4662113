"""``python -m dockyard``: the ``dockyard`` command.

Python puts the working folder first on ``sys.path`` for ``-m``; a worker must not let a file
there shadow an installed module (module planting), so it goes: workers search the project
folder for job functions after the installed packages (:mod:`dockyard.executors.functions`).
"""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from dockyard.cli import main

main()
