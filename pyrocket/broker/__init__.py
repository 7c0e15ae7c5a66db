"""The broker: configuration, topic and consumer-group tables, registration
with the NameServers, the message store, request processors and the app.

- :mod:`.config`: broker.conf over BrokerConfig / NettyServerConfig /
  NettyClientConfig / MessageStoreConfig (:func:`~.config.load_broker_settings`).
- :mod:`.configuration`: GET_BROKER_CONFIG's properties, UPDATE_BROKER_CONFIG's rules.
- :mod:`.topic_config`, :mod:`.subscription_group`: the tables, their versions
  and their JSON files.
- :mod:`.outer_api`, :mod:`.registration`: REGISTER_BROKER and friends to every
  NameServer, at start, periodically and on change.
- :mod:`.stats`: the put/get statistics of GET_BROKER_RUNTIME_INFO.
- :mod:`.parts`: :class:`~.parts.BrokerParts`, the settings, store, tables,
  statistics and registration, with the store calls that keep statistics.
- :mod:`.processors`: request processors (:mod:`.processors.admin`), typed
  against the narrow protocols of :mod:`.processors.ports`.
- :mod:`.dataplane`: the message path's state and processors.
- :mod:`.app`: the composition root, :class:`~.app.Broker` and
  :func:`~.app.serve_broker`.
- :mod:`.store`: the message store.
"""
