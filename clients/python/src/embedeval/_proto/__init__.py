"""The embedeval.v1 messages and gRPC stubs, generated from ``proto/`` by
``clients/python/generate.sh`` (do not edit the ``*_pb2*`` files by hand)."""
