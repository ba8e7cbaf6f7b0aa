"""The test suite. It loads univence before anything imports grpc: univence sets gRPC's transport for the
process (and the services the tests start), as every process of the stack has it."""

import univence  # noqa: F401
