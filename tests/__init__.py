"""The test suite. It loads univence.transport before anything imports grpc: the tests' own gRPC calls, and the
services they start, run on gRPC's transport as every process of the stack does."""

import univence.transport  # noqa: F401
