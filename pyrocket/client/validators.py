"""The checks a client makes on a message before sending it (Java's
``Validators``): a topic name and a message body."""

from __future__ import annotations

import re

from pyrocket.client.instance import AUTO_CREATE_TOPIC_KEY_TOPIC, ClientError
from pyrocket.protocol.message import Message

#: DefaultMQProducer.maxMessageSize: 4 MiB.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Validators.CHARACTER_MAX_LENGTH: longest topic name.
TOPIC_MAX_LENGTH = 255
_TOPIC_PATTERN = re.compile(r"^[%|a-zA-Z0-9_-]+$")


def check_message(message: Message, max_size: int = MAX_MESSAGE_SIZE) -> None:
    """``Validators.checkMessage``: raises ClientError for a bad topic name or
    an empty or oversized body."""
    check_topic(message.topic)
    if not message.body:
        raise ClientError("the message body length is zero")
    if len(message.body) > max_size:
        raise ClientError(f"the message body size over max value, MAX: {max_size}")


def check_topic(topic: str) -> None:
    """``Validators.checkTopic``; raises ClientError."""
    if not topic.strip():
        raise ClientError("The specified topic is blank")
    if not _TOPIC_PATTERN.match(topic):
        raise ClientError(
            f"The specified topic[{topic}] contains illegal characters, "
            f"allowing only {_TOPIC_PATTERN.pattern}"
        )
    if len(topic) > TOPIC_MAX_LENGTH:
        raise ClientError("The specified topic is longer than topic max length 255.")
    if topic == AUTO_CREATE_TOPIC_KEY_TOPIC:
        raise ClientError(f"The topic[{topic}] is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC.")


__all__ = ["MAX_MESSAGE_SIZE", "TOPIC_MAX_LENGTH", "check_message", "check_topic"]
