//! Roles and the role each gRPC method needs: the one table a new RPC is added to.
//!
//! A method this table does not name needs `admin`, so a call added to the
//! proto without a line here is closed to everyone but administrators rather
//! than open to all.

use std::fmt;

/// What an identity may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Get, list and watch jobs; list flows, conductors and workers; reflection.
    Read,
    /// Post jobs.
    Post,
    /// Cancel, drain, suspend, resume, retry, complete.
    Operate,
    /// Apply and delete flows, schedules.
    Admin,
    /// The worker stream (remote task executors).
    Worker,
    /// Another conductor of the fleet (conductor-to-conductor streams).
    Peer,
    /// Scrape `/metrics` on the HTTP listener.
    Metrics,
}

impl Role {
    /// Every role, in the order the auth file documents them.
    pub const ALL: [Role; 7] =
        [Role::Read, Role::Post, Role::Operate, Role::Admin, Role::Worker, Role::Peer, Role::Metrics];

    /// The role's name in the auth file and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Post => "post",
            Role::Operate => "operate",
            Role::Admin => "admin",
            Role::Worker => "worker",
            Role::Peer => "peer",
            Role::Metrics => "metrics",
        }
    }

    /// The role named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    /// Whether a call needing this role changes state, and so gets an audit line.
    pub fn changes_state(self) -> bool {
        matches!(self, Role::Post | Role::Operate | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a request path (`/package.Service/Method`) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, authenticated or not: the gRPC health service (probes).
    Open,
    /// Decided by the handler from what the request carries: `CompleteTask` with a
    /// callback token (the token is the credential), or an operator's override by job
    /// and task, which needs this role. The layer authenticates the caller if it can
    /// and leaves an [`OverrideCheck`](super::OverrideCheck) for the handler.
    ByRequest(Role),
    /// An identity holding this role.
    Needs(Role),
}

impl Access {
    /// The role it names, if any.
    pub fn role(self) -> Option<Role> {
        match self {
            Access::Open => None,
            Access::Needs(role) | Access::ByRequest(role) => Some(role),
        }
    }
}

/// The access `path` (an HTTP/2 `:path` of a gRPC call) needs.
pub fn access_for(path: &str) -> Access {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match service {
        "grpc.health.v1.Health" => Access::Open,
        "baton.v1.Baton" if method == "CompleteTask" => Access::ByRequest(Role::Operate),
        _ => Access::Needs(method_role(service, method).unwrap_or(Role::Admin)),
    }
}

/// The role of each method we serve: add a line here with every new RPC (a test
/// checks that every method of the compiled protos has one).
fn method_role(service: &str, method: &str) -> Option<Role> {
    let role = match (service, method) {
        ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => Role::Read,
        (
            "baton.v1.Baton",
            "GetJob" | "ListJobs" | "WatchJob" | "ListFlows" | "ListConductors" | "GetStatus" | "GetFlow"
            | "FlowHistory" | "FlowGraph",
        ) => Role::Read,
        ("baton.v1.Baton", "PostJob") => Role::Post,
        ("baton.v1.Baton", "CancelJob" | "Drain" | "SuspendJob" | "ResumeJob" | "RetryJob") => Role::Operate,
        ("baton.v1.Baton", "RerunJob") => Role::Post,
        ("baton.v1.Baton", "ApplyFlows" | "DeleteFlow") => Role::Admin,
        ("baton.v1.Baton", "ListSchedules" | "GetSchedule") => Role::Read,
        ("baton.v1.Baton", "CreateSchedule" | "PauseSchedule" | "ResumeSchedule" | "DeleteSchedule") => Role::Admin,
        ("baton.v1.Workers", "ListWorkers") => Role::Read,
        ("baton.v1.Workers", "Attach") => Role::Worker,
        ("baton.v1.Relay", "Relay") => Role::Peer,
        ("baton.v1.Baton", "CompleteTask") => return access_for("/baton.v1.Baton/CompleteTask").role(),
        _ => return None,
    };
    Some(role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_family_maps_to_its_role_and_unknown_calls_to_admin() {
        assert_eq!(access_for("/grpc.health.v1.Health/Check"), Access::Open);
        assert_eq!(access_for("/grpc.health.v1.Health/Watch"), Access::Open);
        assert_eq!(access_for("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), Access::Needs(Role::Read));
        assert_eq!(access_for("/baton.v1.Baton/GetJob"), Access::Needs(Role::Read));
        assert_eq!(access_for("/baton.v1.Baton/PostJob"), Access::Needs(Role::Post));
        assert_eq!(access_for("/baton.v1.Baton/Drain"), Access::Needs(Role::Operate));
        assert_eq!(access_for("/baton.v1.Baton/SomethingNew"), Access::Needs(Role::Admin));
        assert_eq!(access_for("/other.Service/Call"), Access::Needs(Role::Admin));
        assert_eq!(access_for(""), Access::Needs(Role::Admin));
        assert_eq!(access_for("/baton.v1.Workers/Attach"), Access::Needs(Role::Worker));
        assert_eq!(access_for("/baton.v1.Baton/CompleteTask"), Access::ByRequest(Role::Operate));
        assert_eq!(access_for("/baton.v1.Relay/Relay"), Access::Needs(Role::Peer));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn every_method_of_the_compiled_protos_has_a_role_of_its_own() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("compiled-in descriptors");
        let mut missing = Vec::new();
        for file in &set.file {
            for service in &file.service {
                let service_name = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    if method_role(&service_name, method.name()).is_none() {
                        missing.push(format!("/{service_name}/{}", method.name()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "add these RPCs to roles.rs's method_role: {missing:?}");
    }
}
