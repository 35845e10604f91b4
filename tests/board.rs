//! Board conformance: the shared suite on the embedded and etcd backends.
