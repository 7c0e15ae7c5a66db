"""Master/slave replication, Java 4.7.0's HA protocol (wire format in
:mod:`pyrocket.protocol.ha`).

:mod:`.master` is the master side (Java's ``HAService`` accept loop,
``HAConnection`` and the group transfer a SYNC_MASTER's sends wait on);
:mod:`.slave` is the slave side (``HAService.HAClient``). Both work on the
broker's message store through the narrow :class:`.ports.ReplicatedStore`.
"""

from pyrocket.broker.ha.master import HAService
from pyrocket.broker.ha.slave import HAClient

__all__ = ["HAClient", "HAService"]
