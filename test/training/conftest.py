"""Fixtures of the training tests (helpers that are not fixtures live in training_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch intra-op thread for a module's tests, restored afterwards.

    The CI machine has 2 shared cores; tiny models run faster without intra-op threads fighting.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
