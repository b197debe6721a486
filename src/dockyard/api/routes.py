"""Importing this module registers every route (one module per resource)."""
from . import containers, system  # noqa: F401
from . import checkpoints  # noqa: F401
from . import events  # noqa: F401
from . import networks  # noqa: F401
from . import container_ops  # noqa: F401
from . import system_df, swarm  # noqa: F401
from . import exec  # noqa: F401
from . import stats  # noqa: F401
from . import archive, auth  # noqa: F401
from . import volumes  # noqa: F401
from . import images  # noqa: F401
from . import build  # noqa: F401
