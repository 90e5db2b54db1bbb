"""The web console: a page at ``/`` that shows and drives a node through ``/v1``."""

from triggerfish.console.routes import ASSETS, create_router

__all__ = ["ASSETS", "create_router"]
