"""What every ``/v1`` route shares: the facade it calls, acting for the request's token.

:func:`~dockyard.api.auth.acting_facade` authenticates the bearer token (401 without a live one)
and the facade decides what the token's role allows, as it does for every other edge; each route
also names the operation it performs (``dependencies=[allowed(Jobs.submit)]``), so that a
refused role gets its 403 before the body is validated.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from dockyard.api.auth import acting_facade
from dockyard.app import Dockyard

__all__ = ["App"]

#: Every route acts for the request's token; the facade checks what its role allows.
App = Annotated[Dockyard, Depends(acting_facade)]
