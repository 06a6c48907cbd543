"""One module per pair; ``FLOWS`` is the registry the engine looks kinds up in."""

from __future__ import annotations

from integrations.flows.base import Flow

_REGISTRY: dict[str, type[Flow]] = {}


def register(cls: type[Flow]) -> type[Flow]:
    _REGISTRY[cls.kind] = cls
    return cls


def get_flow(kind: str) -> Flow:
    _load()
    try:
        return _REGISTRY[kind]()
    except KeyError:
        raise KeyError(f"unknown integration kind {kind!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def flow_kinds() -> list[tuple[str, str]]:
    _load()
    return sorted((kind, cls.label) for kind, cls in _REGISTRY.items())


def _load() -> None:
    # Import the flow modules lazily so importing the registry has no side effects.
    from integrations.flows import (  # noqa: F401
        intacct_servicenow,
        sage300_servicenow,
        servicetitan_x3,
        syspro_servicenow,
        x3_servicenow,
    )
