"""Shared by the generation and chat tests: run models with the threads chat itself uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from bonsai.generate.fast import inference_threads


@pytest.fixture(autouse=True, scope="module")
def inference_thread_count() -> Iterator[None]:
    """Chat and serve set their threads with ``inference_threads``; so do these tests, which also
    keeps them from stalling when other processes keep the machine's cores busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(inference_threads())
    yield
    torch.set_num_threads(before)
