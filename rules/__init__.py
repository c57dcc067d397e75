"""Rules decide; they never act.

Each rule is a module with a ``name``, a ``description`` and
``check(message, context) -> bool``: True when the rule matches. A rule
records why it matched with ``context.record(name, reason)`` and changes
nothing else. Rules are registered here explicitly, in no particular
order; the order that matters is the chain's (gateway/inbound/chain.py).
"""

from __future__ import annotations

from types import ModuleType

from rules import bad_directives, duplicate, is_command, loop_guard, missing_level, unknown_sender


def _registry(*modules: ModuleType) -> dict[str, ModuleType]:
    registry: dict[str, ModuleType] = {}
    for module in modules:
        if module.name in registry:
            raise ValueError(f"two rules are named {module.name!r}")
        registry[module.name] = module
    return registry


RULES = _registry(loop_guard, unknown_sender, duplicate, missing_level, is_command, bad_directives)
