from __future__ import annotations

import pytest

from tests.llm.helpers import serve_llm


@pytest.fixture
async def llm():
    """(stub, runtime) of a tiny-profile LLM service."""
    async with serve_llm() as service:
        yield service
