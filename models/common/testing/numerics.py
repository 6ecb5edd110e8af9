# SPDX-License-Identifier: Apache-2.0
"""Comparing a module's output against a reference, honestly per device tier.

On hardware and ttsim the output holds real numbers: the PCC is computed and asserted. On a mock device
read-back is zeros; with shadow execution on (``models/common/testing/shadow``, the ``ttnn_mesh_device`` fixture
turns it on) the output holds the host golden values instead, and the PCC is computed and asserted against the same
threshold (*compared (shadow)*). A case whose host golden costs too much runs *dispatched only*
(``ReferenceCheck.running(compare=False)``, ``models/common/testing/dispatch_only.py``): every op is validated and
dispatched on its mesh, no numbers exist and none are compared. The pytest summary reports the counts per tier
(``numerics: N compared on device, S compared (shadow), D dispatched only (no numbers)``). A PCC is never invented.
"""

import contextlib

import pytest
import torch

from models.common.devices import HARDWARE, TTSIM
from models.common.testing import dispatch_only
from models.common.testing.shadow import session as shadow

NUMERICS_PROPERTY = "tttv2_numerics"  # key of the user property a test report carries its comparisons in
DEVICE, SHADOW = "compared on device", "compared (shadow)"
DISPATCHED = "dispatched only (no numbers)"
OUTCOMES = (DEVICE, SHADOW, DISPATCHED)
# What CI computes through the shadow on the mock tier (issue 19's budget); the rest runs dispatched only, and
# ``--full-sweep`` computes every case. Host golden cost grows with the weights and the rows pushed through them.
SHADOW_MAX_DIM = 4096  # hidden_size of Llama-3.1-8B: models up to the 8B class
SHADOW_MAX_PREFILL_LEN = 2048  # prefill tokens
# Marks a case the mock tier runs dispatched only unless --full-sweep, for lists picked by hand (pyproject.toml).
DISPATCHED_IN_CI = pytest.mark.dispatched_in_ci


def unmarked(request) -> bool:
    """Whether the running case computes numbers on the mock tier in CI, by its marks (not DISPATCHED_IN_CI)."""
    return request.node.get_closest_marker(DISPATCHED_IN_CI.name) is None


def shadow_affordable(*, dim: int, mode: str, seq_len: int, max_prefill_len: int = SHADOW_MAX_PREFILL_LEN) -> bool:
    """Whether CI computes this case's numbers through the shadow: every decode and every prefill up to
    ``max_prefill_len`` tokens (a module whose goldens cost more passes less), of models up to SHADOW_MAX_DIM wide."""
    return dim <= SHADOW_MAX_DIM and (mode == "decode" or seq_len <= max_prefill_len)


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

    def __init__(self, tier: str, user_properties: list, full_sweep: bool = False):
        self.tier = tier
        self.full_sweep = full_sweep
        self._user_properties = user_properties

    def compares(self, affordable: bool) -> bool:
        """Whether this case computes numbers: always on hardware and ttsim; on the mock tier when its host golden
        is ``affordable`` (e.g. ``shadow_affordable(...)``) or under ``--full-sweep``."""
        return self.tier in (HARDWARE, TTSIM) or affordable or self.full_sweep

    @contextlib.contextmanager
    def running(self, compare: bool):
        """The block that builds the module and runs its forwards: as is when ``compare``, else dispatched only
        (weights and inputs allocated from their spec, no shadow), counted as such when the block completes."""
        if compare:
            yield
            return
        with dispatch_only.dispatch_only():
            yield
        self._record(DISPATCHED)

    def __call__(self, reference: torch.Tensor, output: torch.Tensor, min_pcc: float) -> float:
        """Assert ``output`` matches ``reference``; returns the PCC."""
        assert tuple(output.shape) == tuple(reference.shape), (
            f"output shape {tuple(output.shape)} != reference shape {tuple(reference.shape)}"
        )
        if self.tier in (HARDWARE, TTSIM):
            outcome = DEVICE
        elif shadow.is_active():  # the output was read back from shadow goldens (unshadowed reads raise)
            outcome = SHADOW
        else:
            raise RuntimeError(
                f"no numbers to compare on the {self.tier} tier without shadow execution; open the mesh with the "
                "ttnn_mesh_device fixture, or run the case under reference_check.running(compare=False)"
            )
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
