"""The broker's request processors, one module per Java processor class.

Each module has a class built from the narrow view of the broker it reads
(a protocol of :mod:`.ports`, served by the broker's parts) with an
``install()`` method registering its codes on the broker's servers. No
processor imports the app (:mod:`pyrocket.broker.app`, which builds and
registers them) or the message path (:mod:`pyrocket.broker.dataplane`).
"""
