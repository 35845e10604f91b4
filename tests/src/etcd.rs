//! `EtcdProcess`: a throwaway etcd for tests (loopback, free ports, temp data dir).
