//! End to end: the `baton` CLI, the gRPC API and `conductor` processes on a real etcd.
