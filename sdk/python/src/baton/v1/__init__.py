"""Generated protobuf and gRPC stubs for Baton's `baton.v1` package (see gen_stubs.py).

`worker_pb2` / `worker_pb2_grpc`: the remote worker protocol (`baton.v1.Workers`);
`baton_pb2` / `baton_pb2_grpc`: the job API (`baton.v1.Baton`). Do not edit the
generated files: change the .proto files and run sdk/python/gen_stubs.py.
"""
