"""pyrocket: Apache RocketMQ 4.7's NameServer, broker and clients on trio.

The package is layered (see DESIGN.md): ``protocol`` is sans-I/O, ``remoting``
moves commands over TCP, ``namesrv`` and ``broker`` are servers built on both,
``client`` speaks to any 4.x cluster.
"""

from pyrocket.errors import (
    CommandError,
    ConfigError,
    ConnectionClosedError,
    ProtocolError,
    PyrocketError,
    RemotingConnectError,
    RemotingError,
    RemotingTimeoutError,
    RemotingTooMuchRequestError,
    ResponseError,
)

__version__ = "0.1.0"

__all__ = [
    "CommandError",
    "ConfigError",
    "ConnectionClosedError",
    "ProtocolError",
    "PyrocketError",
    "RemotingConnectError",
    "RemotingError",
    "RemotingTimeoutError",
    "RemotingTooMuchRequestError",
    "ResponseError",
    "__version__",
]
