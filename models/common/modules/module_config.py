# SPDX-License-Identifier: Apache-2.0
"""ResolvableConfig: frozen module configs whose ``None`` fields are filled once by overridable defaults.

A module config is a frozen dataclass. ``None`` means "derive this": ``resolve()`` walks the fields in declaration
order and, for each ``None`` field with a ``default_<name>()`` method, sets it from that method. Fields are
declared in dependency order, so a default may read any field above it. A subclass changes one decision by
overriding one method; a user changes one value by passing it. Nothing is mutated: each step is a
``dataclasses.replace``.
"""

from dataclasses import fields, replace
from typing import ClassVar


class ResolvableConfig:
    """Mixin for frozen dataclass configs; see the module docstring."""

    # Fields that may legitimately stay None after resolution (e.g. no CCL topology on a single device).
    OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def resolve(self):
        config = self
        for field in fields(config):
            if getattr(config, field.name) is None:
                default = getattr(config, f"default_{field.name}", None)
                if default is not None:
                    config = replace(config, **{field.name: default()})
        missing = [
            field.name
            for field in fields(config)
            if getattr(config, field.name) is None and field.name not in config.OPTIONAL_FIELDS
        ]
        if missing:
            raise ValueError(f"{type(config).__name__}: no value and no default for {', '.join(missing)}")
        return config
