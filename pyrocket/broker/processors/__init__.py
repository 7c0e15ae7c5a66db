"""The broker's request processors, one module per Java processor class.

Each module has a class built from the running
:class:`~pyrocket.broker.app.Broker` with an ``install()`` method registering
its codes on the broker's servers.
"""
