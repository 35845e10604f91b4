//! The text `conductor --help` prints after the flags.

/// What `conductor --help` prints after the flags.
pub(super) const AFTER_HELP: &str = "\
Every flag can also be set in the environment as BATON_<FLAG> (--max-jobs: BATON_MAX_JOBS,
--etcd: BATON_ETCD=http://a:2379,http://b:2379; an empty value counts as unset), or in the
YAML file given by --config (or BATON_CONFIG) as a snake_case key (max_jobs: 8). Precedence:
flags, then environment, then the file, then the defaults shown. Durations take a unit:
500ms, 10s, 2m, 1h, 7d. Logs go to stderr; RUST_LOG filters them (default info).

Flow files: every *.yaml / *.yml file in --flows-dir declares one flow. They are checked at
start (a file with any error, or a flow name taken twice or by a Rust flow of the binary,
stops the conductor: exit 2, every problem as FILE:LINE:COLUMN: path: what), then applied
to the board once it answers: unchanged content is a no-op and an older file never moves a
flow's current version back, so a fleet may start with the same directory and a rolling
update is safe. Every conductor runs the board's flows (`baton flows apply` adds more), a job
pinned to the version it was posted against. A flow using a task kind outside --task-kinds
(reverts included) is not claimed here, with a warning. The kinds are noop, sleep, fail,
http, remote, await and shell; all but shell are on by default (shell runs commands on
this host: name it to turn it on, e.g. --task-kinds noop,sleep,fail,http,shell). An await
task parks its job until `baton complete TOKEN`, CompleteTask or POST /v1/callbacks/TOKEN
on --http-listen completes it (${callback.url} is based on --http-advertise).
${secret.NAME} in a task resolves from the file NAME in --secrets-dir, at run time only;
secret values never reach the job's logbook, results, failures, the API or the logs.

Security: beyond loopback, the conductor wants TLS (--tls-cert, --tls-key, --tls-client-ca)
or an auth file (--auth-file), or --insecure to serve without them; it never rebinds quietly.
Conductors relay tasks to workers attached to each other: with an auth file, each needs a
peer credential, --peer-token-file (a token of an identity with the `peer` role) or
--peer-cert/--peer-key (a `cert:` identity with `peer`); with TLS, relay links are https://,
trusting --peer-ca (default --tls-client-ca). Files are read when a link opens.
The etcd password comes from --etcd-password-file or BATON_ETCD_PASSWORD only.

Backpressure: posts are refused with RESOURCE_EXHAUSTED while --max-queued jobs are queued,
from 90% of --etcd-quota-bytes on (set it to etcd's --quota-backend-bytes), and while etcd
has an alarm (NOSPACE) raised; running jobs keep the rest of the quota to finish.";
