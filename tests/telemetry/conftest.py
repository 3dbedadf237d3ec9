"""The OTLP receiver fixtures (tests/support/otlp.py), made available to this area's tests."""

from tests.support.otlp import global_otlp_receiver, otlp_grpc_receiver, otlp_receiver

__all__ = ["global_otlp_receiver", "otlp_grpc_receiver", "otlp_receiver"]
