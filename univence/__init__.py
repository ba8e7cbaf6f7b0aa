"""Univence API: generated protobuf stubs (univence.<service>.v1) and the `univence` command (univence.cli)."""
