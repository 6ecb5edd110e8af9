# SPDX-License-Identifier: Apache-2.0
"""LightweightModule: a callable module base without torch.nn.Module's bookkeeping (hooks, parameter registry)."""

from typing import ClassVar


class LightweightModule:
    """Call the module to run ``forward``; subclasses define ``forward`` (or bind it in ``__init__``).

    A configured module names its config class in ``CONFIG`` and builds itself in ``_init_from_config(config)``:
    ``__init__`` builds the config from its arguments, ``from_config`` takes a whole one (the power-user path).
    """

    CONFIG: ClassVar[type | None] = None

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    @classmethod
    def from_config(cls, config):
        """The module built from a whole ``CONFIG`` (its ``None`` fields still derived); one TypeError otherwise."""
        if cls.CONFIG is None or not isinstance(config, cls.CONFIG):
            expected = cls.CONFIG.__name__ if cls.CONFIG else "config"
            raise TypeError(f"{cls.__name__} takes an {expected}, not {type(config).__name__}")
        module = cls.__new__(cls)
        module._init_from_config(config)
        return module


def identity(x):
    """The variant a module binds in ``__init__`` for a step that does not apply (no bias, no CCL on one device)."""
    return x
