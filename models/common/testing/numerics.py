# SPDX-License-Identifier: Apache-2.0
"""Comparing a module's output against a reference, honestly per device tier.

On hardware and ttsim the output holds real numbers: the PCC is computed and asserted. On a mock device
read-back is zeros; with shadow execution on (``models/common/testing/shadow``, the ``ttnn_mesh_device`` fixture
turns it on) the output holds the host golden values instead, and the PCC is computed and asserted against the same
threshold (*compared (shadow)*). Otherwise only the shape is asserted and the comparison is counted as *not
checked*. The pytest summary reports the counts (``numerics: N compared on device, S compared (shadow), M not
checked``). A PCC is never invented.
"""

import torch

from models.common.devices import HARDWARE, TTSIM
from models.common.testing.shadow import session as shadow

NUMERICS_PROPERTY = "tttv2_numerics"  # key of the user property a test report carries its comparisons in
DEVICE, SHADOW = "compared on device", "compared (shadow)"
UNCHECKED = "not checked (mock device: read-back is zeros)"
OUTCOMES = (DEVICE, SHADOW, UNCHECKED)


def pcc(expected: torch.Tensor, actual: torch.Tensor) -> float:
    """Pearson correlation of two tensors (1.0 when both are the same constant, 0.0 when only one is)."""
    a = expected.detach().flatten().double()
    b = actual.detach().flatten().double()
    if torch.equal(a, b):
        return 1.0
    a, b = a - a.mean(), b - b.mean()
    denominator = a.norm() * b.norm()
    if denominator == 0:
        return 0.0
    return float((a @ b) / denominator)


class ReferenceCheck:
    """Callable a test uses to compare an output against its reference; records each outcome on the report."""

    def __init__(self, tier: str, user_properties: list):
        self.tier = tier
        self._user_properties = user_properties

    def __call__(self, reference: torch.Tensor, output: torch.Tensor, min_pcc: float) -> float | None:
        """Assert ``output`` matches ``reference``; returns the PCC, or None when it could not be computed."""
        assert tuple(output.shape) == tuple(reference.shape), (
            f"output shape {tuple(output.shape)} != reference shape {tuple(reference.shape)}"
        )
        if self.tier in (HARDWARE, TTSIM):
            outcome = DEVICE
        elif shadow.is_active():  # the output was read back from shadow goldens (unshadowed reads raise)
            outcome = SHADOW
        else:
            self._record(UNCHECKED)
            return None
        value = pcc(reference, output)
        self._record(outcome)
        assert value >= min_pcc, f"PCC {value:.6f} < {min_pcc} ({outcome}, {self.tier})"
        return value

    def _record(self, outcome: str) -> None:
        for key, counts in self._user_properties:
            if key == NUMERICS_PROPERTY:
                counts[outcome] = counts.get(outcome, 0) + 1
                return
        self._user_properties.append((NUMERICS_PROPERTY, {outcome: 1}))


def summary_line(totals: dict) -> str:
    return "numerics: " + ", ".join(f"{totals.get(outcome, 0)} {outcome}" for outcome in OUTCOMES)
