"""A quicker constructor for the frozen, slotted dataclasses built once or
more per message (commands, headers, store records and results).

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` looked up by name, which costs about twice what the
class's own slot descriptors do. :func:`quick_init` swaps in an ``__init__``
with the same signature, defaults, default factories and ``__post_init__``
call that sets each slot through its descriptor. Nothing else changes: the
instances stay frozen (assignment still raises), compare, hash, print and
``dataclasses.replace`` as before.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, cast

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted dataclass ``cls`` the quicker ``__init__``
    (apply above ``@dataclass``). Refuses a class it cannot serve exactly:
    not a frozen slotted dataclass, or a field left out of ``__init__``,
    keyword-only, or typed ``InitVar``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    namespace: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    arguments: list[str] = []
    body: list[str] = []
    for number, f in enumerate(dataclasses.fields(cast(Any, cls))):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        name = f.name
        namespace[f"_set{number}"] = getattr(cls, name).__set__
        if f.default is not dataclasses.MISSING:
            namespace[f"_default{number}"] = f.default
            arguments.append(f"{name}=_default{number}")
        elif f.default_factory is not dataclasses.MISSING:
            # The dataclass's own marker for "not given": the factory runs per call.
            namespace[f"_factory{number}"] = f.default_factory
            arguments.append(f"{name}=_MISSING")
            body.append(f"    if {name} is _MISSING: {name} = _factory{number}()")
        else:
            if any("=" in argument for argument in arguments):
                raise TypeError(f"{cls.__name__}.{name}: a field without default follows one")
            arguments.append(name)
        body.append(f"    _set{number}(self, {name})")
    post_init = getattr(cls, "__post_init__", None)
    if post_init is not None:
        namespace["_post_init"] = post_init
        body.append("    _post_init(self)")
    source = f"def __init__(self, {', '.join(arguments)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010
    return cls


__all__ = ["quick_init"]
