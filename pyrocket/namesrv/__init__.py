"""The NameServer: route state, KV config, request handlers and the app.

- :mod:`.routeinfo`: :class:`RouteInfoManager`, the route tables (no I/O).
- :mod:`.kvconfig`: :class:`KVConfigManager` and its kvConfig.json file.
- :mod:`.config`: :class:`NamesrvConfig` (Java's property names), loading,
  GET/UPDATE_NAMESRV_CONFIG's view of it.
- :mod:`.processor`: the handlers of the 19 NameServer request codes.
- :mod:`.housekeeping`: brokers dropped when their connection goes.
- :mod:`.app`: :class:`NameServer` / :func:`serve_namesrv`, one nursery
  running the server and the broker expiry scan.
"""

from pyrocket.namesrv.app import NameServer, serve_namesrv
from pyrocket.namesrv.config import NamesrvConfig, load_config
from pyrocket.namesrv.kvconfig import KVConfigManager
from pyrocket.namesrv.routeinfo import RouteInfoManager

__all__ = [
    "KVConfigManager",
    "NameServer",
    "NamesrvConfig",
    "RouteInfoManager",
    "load_config",
    "serve_namesrv",
]
