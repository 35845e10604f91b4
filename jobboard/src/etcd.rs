//! `EtcdBoard`: the job board on etcd v3, for a fleet of conductors.
