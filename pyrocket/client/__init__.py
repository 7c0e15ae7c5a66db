"""Clients of RocketMQ servers: typed requests to NameServers and brokers,
and what mqadmin and the Java client build on them."""
