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
    /// An identity holding this role.
    Needs(Role),
}

/// The access `path` (an HTTP/2 `:path` of a gRPC call) needs.
pub fn access_for(path: &str) -> Access {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match service {
        "grpc.health.v1.Health" => Access::Open,
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => Access::Needs(Role::Read),
        "baton.v1.Baton" => Access::Needs(baton_method_role(method)),
        _ => Access::Needs(Role::Admin),
    }
}

/// The role of each `baton.v1.Baton` method. Add a line here with every new RPC.
fn baton_method_role(method: &str) -> Role {
    match method {
        "GetJob" | "ListJobs" | "WatchJob" | "ListFlows" | "ListConductors" | "GetStatus" | "ListWorkers"
        | "GetFlow" | "ListSchedules" => Role::Read,
        "PostJob" => Role::Post,
        "CancelJob" | "Drain" | "SuspendJob" | "ResumeJob" | "RetryJob" | "CompleteTask" => Role::Operate,
        "ApplyFlow" | "DeleteFlow" | "ApplySchedule" | "DeleteSchedule" => Role::Admin,
        _ => Role::Admin,
    }
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
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
