//! Flow definitions in etcd: `P defs/v/<name>/<version>` holds each version
//! (immutable JSON), `P defs/current/<name>` the current version's number.
//!
//! An apply reads the flow's history and current key, decides with
//! `flow_defs::decide`, and writes the new version and the current key in one
//! txn that holds only if the current key is as read and the version key is
//! new; a concurrent apply makes it read again and take the next number.

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use super::codec::{decode, encode};
use super::Inner;
use crate::error::Error;
use crate::flow_defs::{decide, Applied, ApplyRule, Decision, FlowVersion, NewFlowVersion};

/// How many times an apply re-reads after losing a race to another apply.
const APPLY_ROUNDS: usize = 32;

impl Inner {
    pub(super) async fn apply_flow(&self, def: &NewFlowVersion, rule: ApplyRule) -> Result<Applied, Error> {
        crate::flow_defs::check_name(&def.name)?;
        let keys = &self.keys;
        for _ in 0..APPLY_ROUNDS {
            let history = self.flow_history_or_empty(&def.name).await?;
            let current = self.get(keys.flow_current(&def.name), None, "reading a flow's current version").await?;
            let current_kv = current.kvs().first();
            let current_rev = current_kv.map_or(0, |kv| kv.mod_revision());
            let current_version = current_kv.and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse::<u32>().ok());
            let seen: Vec<(u32, &str)> = history.iter().map(|v| (v.version, v.hash.as_str())).collect();
            let version = match decide(&seen, current_version, &def.hash, rule) {
                Decision::Unchanged(applied) => return Ok(applied),
                Decision::Create(version) => version,
            };
            let stored = FlowVersion {
                name: def.name.clone(),
                version,
                hash: def.hash.clone(),
                source: def.source.clone(),
                applied_ms: flows::now_millis(),
            };
            let version_key = keys.flow_version(&def.name, version);
            let txn = Txn::new()
                .when([
                    Compare::mod_revision(keys.flow_current(&def.name), CompareOp::Equal, current_rev),
                    Compare::create_revision(version_key.clone(), CompareOp::Equal, 0),
                ])
                .and_then([
                    TxnOp::put(version_key, encode(&stored, "flow definition")?, None),
                    TxnOp::put(keys.flow_current(&def.name), version.to_string(), None),
                ]);
            if self.txn(txn, &format!("applying flow {}", def.name)).await?.succeeded() {
                return Ok(Applied { version, created: true, current: version });
            }
        }
        Err(Error::Unavailable {
            message: format!("flow {} kept changing while applying it; try again", def.name),
            source: None,
        })
    }

    pub(super) async fn flow_version(&self, name: &str, version: Option<u32>) -> Result<FlowVersion, Error> {
        let unknown = || Error::UnknownFlow { name: name.to_owned(), version };
        let version = match version {
            Some(version) => version,
            None => {
                let current = self.get(self.keys.flow_current(name), None, "reading a flow's current version").await?;
                let kv = current.kvs().first().ok_or_else(unknown)?;
                std::str::from_utf8(kv.value()).ok().and_then(|v| v.parse().ok()).ok_or_else(|| Error::Backend {
                    message: format!("flow {name}'s current version is not a number"),
                    source: None,
                })?
            }
        };
        let resp = self.get(self.keys.flow_version(name, version), None, "reading a flow definition").await?;
        let kv = resp.kvs().first().ok_or_else(unknown)?;
        decode(kv.value(), "flow definition")
    }

    pub(super) async fn flow_history(&self, name: &str) -> Result<Vec<FlowVersion>, Error> {
        let history = self.flow_history_or_empty(name).await?;
        if history.is_empty() {
            return Err(Error::UnknownFlow { name: name.to_owned(), version: None });
        }
        Ok(history)
    }

    async fn flow_history_or_empty(&self, name: &str) -> Result<Vec<FlowVersion>, Error> {
        let prefix = self.keys.flow_versions_prefix(name);
        let resp = self.get(prefix, Some(GetOptions::new().with_prefix()), "reading a flow's versions").await?;
        // Zero-padded version numbers: key order is version order.
        resp.kvs().iter().map(|kv| decode(kv.value(), "flow definition")).collect()
    }

    pub(super) async fn current_flows(&self) -> Result<Vec<FlowVersion>, Error> {
        let prefix = self.keys.flow_current_prefix();
        let resp = self.get(prefix.clone(), Some(GetOptions::new().with_prefix()), "listing flows").await?;
        let mut flows = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let name = String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned();
            match self.flow_version(&name, None).await {
                Ok(version) => flows.push(version),
                // Deleted between the two reads.
                Err(Error::UnknownFlow { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(flows)
    }

    /// Deletes every version; the caller has checked that no unfinished job uses it.
    pub(super) async fn delete_flow_versions(&self, name: &str) -> Result<(), Error> {
        let keys = &self.keys;
        let txn = Txn::new().and_then([
            TxnOp::delete(keys.flow_versions_prefix(name), Some(etcd_client::DeleteOptions::new().with_prefix())),
            TxnOp::delete(keys.flow_current(name), None),
        ]);
        let resp = self.txn(txn, &format!("deleting flow {name}")).await?;
        let removed = resp.op_responses().into_iter().any(|op| match op {
            etcd_client::TxnOpResponse::Delete(deleted) => deleted.deleted() > 0,
            _ => false,
        });
        if removed {
            Ok(())
        } else {
            Err(Error::UnknownFlow { name: name.to_owned(), version: None })
        }
    }
}
