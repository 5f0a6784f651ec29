"""The seeded fault soak (tests/reliability/soak.py) in CI: 20 cycles with a fixed seed, about two
minutes. SOAK_SEED and SOAK_CYCLES change them; a failure names the seed and cycle to replay."""

import os
from pathlib import Path

import pytest

from tests.reliability.soak import run_soak

CI_SEED = 20261201
CI_CYCLES = 20


@pytest.mark.timeout(900)
def test_the_seeded_fault_soak(tmp_path: Path) -> None:
    seed = int(os.environ.get("SOAK_SEED", CI_SEED))
    cycles = int(os.environ.get("SOAK_CYCLES", CI_CYCLES))
    print(run_soak(seed, cycles, tmp_path))
