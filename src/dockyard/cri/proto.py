"""The CRI's generated messages and service stubs (`pb`, `grpc_pb`),
generated from api.proto on first import when they are missing (codegen.py)."""
from __future__ import annotations

from . import codegen

if not codegen.up_to_date():
    codegen.generate()

from .generated import api_pb2 as pb  # noqa: E402
from .generated import api_pb2_grpc as grpc_pb  # noqa: E402

__all__ = ["pb", "grpc_pb"]
