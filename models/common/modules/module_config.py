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

from models.common.tensor_utils import TILE_SIZE, nearest_multiple


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


class DecodeBatchRows:
    """Mixin for configs with a ``max_batch_size`` field."""

    @property
    def tile_padded_batch_rows(self) -> int:
        """Decode batch rows as a device holds them, whole tiles (TTTv1 ModelArgs.tile_padded_batch_rows)."""
        return nearest_multiple(self.max_batch_size, TILE_SIZE)


class VocabTable:
    """Mixin for configs whose ``weight`` is a (vocab, dim) table: the embedding and the LM head."""

    @property
    def vocab_size(self) -> int:
        return self.weight.shape[0]

    @property
    def dim(self) -> int:
        return self.weight.shape[1]
