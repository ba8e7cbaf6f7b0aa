from __future__ import annotations

import pytest_asyncio

from tests.llm.helpers import BACKENDS, serve_llm


@pytest_asyncio.fixture(scope="session", loop_scope="session", params=BACKENDS)
async def llm(request, tmp_path_factory):
    """(stub, runtime) of an LLM service, once per backend for the session: transformers on the tiny
    profile, and vllm (where it is installed) on a tiny model folder with `load_format="dummy"`. Tests
    that use it run in the session's event loop (`pytestmark = pytest.mark.asyncio(loop_scope="session")`)."""
    async with serve_llm(request.param, tmp_path_factory.mktemp(f"llm-{request.param}")) as service:
        yield service
