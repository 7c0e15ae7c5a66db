"""Message traces as Java 4.7.0's ``org.apache.rocketmq.client.trace``
writes them: records of sends (and consumption) sent to
``RMQ_SYS_TRACE_TOPIC`` so Java's tools and the dashboard show them.

:mod:`.encoder` is the text format (no I/O), :mod:`.dispatcher` batches
records and sends them with an internal producer, :mod:`.hooks` builds the
records from a client's sends.
"""

from pyrocket.client.trace.encoder import (
    RMQ_SYS_TRACE_TOPIC,
    MessageType,
    TraceBean,
    TraceContext,
    TraceType,
    decode_traces,
    encode_trace,
)

__all__ = [
    "RMQ_SYS_TRACE_TOPIC",
    "MessageType",
    "TraceBean",
    "TraceContext",
    "TraceType",
    "decode_traces",
    "encode_trace",
]
