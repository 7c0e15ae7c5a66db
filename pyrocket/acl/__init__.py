"""Access control as Java 4.7's ``acl`` module has it, sans I/O: request
signatures (:mod:`~pyrocket.acl.signing`), white-list patterns
(:mod:`~pyrocket.acl.addresses`), ``plain_acl.yml`` and its edits
(:mod:`~pyrocket.acl.plain`) and the check of one request
(:mod:`~pyrocket.acl.validator`). The servers read the file and apply the
check; the clients sign."""

from pyrocket.acl.plain import AclConfig, load_text
from pyrocket.acl.signing import SessionCredentials, sign_request
from pyrocket.acl.validator import Refusal, check

__all__ = ["AclConfig", "Refusal", "SessionCredentials", "check", "load_text", "sign_request"]
