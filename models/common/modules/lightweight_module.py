# SPDX-License-Identifier: Apache-2.0
"""LightweightModule: a callable module base without torch.nn.Module's bookkeeping (hooks, parameter registry)."""


class LightweightModule:
    """Call the module to run ``forward``; subclasses define ``forward`` (or bind it in ``__init__``)."""

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


def identity(x):
    """The variant a module binds in ``__init__`` for a step that does not apply (no bias, no CCL on one device)."""
    return x
