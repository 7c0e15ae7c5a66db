"""Sans-I/O RocketMQ 4.7 wire protocol."""
