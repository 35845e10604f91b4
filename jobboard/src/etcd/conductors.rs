//! Conductor registrations: a key per conductor on its session's lease.

use std::collections::HashMap;

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

use super::codec::{decode, encode};
use super::Inner;
use crate::error::Error;
use crate::job::ConductorInfo;

impl Inner {
    pub(super) async fn register_conductor(&self, info: &ConductorInfo) -> Result<(), Error> {
        self.check_live()?;
        if info.name.is_empty() || info.name.contains('/') {
            return Err(Error::InvalidInput(format!("bad conductor name {:?}: empty or contains '/'", info.name)));
        }
        let stored = ConductorInfo { jobs: 0, ..info.clone() };
        let options = PutOptions::new().with_lease(self.session.lease);
        let (key, value) = (self.keys.conductor(&info.name), encode(&stored, "conductor")?);
        let put = || {
            let (mut kv, key, value, options) = (self.kv(), key.clone(), value.clone(), options.clone());
            async move { kv.put(key, value, Some(options)).await }
        };
        super::bounded(put, &format!("registering conductor {}", info.name)).await?;
        Ok(())
    }

    /// Live conductors, each with the number of owner keys in its name.
    pub(super) async fn conductors(&self) -> Result<Vec<ConductorInfo>, Error> {
        let mut registered =
            self.get(self.keys.conductor_prefix(), Some(GetOptions::new().with_prefix()), "listing conductors").await?;
        let mut owners =
            self.get(self.keys.owner_prefix(), Some(GetOptions::new().with_prefix()), "listing claims").await?;
        let mut held: HashMap<String, u32> = HashMap::new();
        for kv in owners.take_kvs() {
            *held.entry(String::from_utf8_lossy(kv.value()).into_owned()).or_default() += 1;
        }
        let mut out = Vec::new();
        for kv in registered.take_kvs() {
            let mut info: ConductorInfo = decode(kv.value(), "conductor")?;
            info.jobs = held.get(&info.name).copied().unwrap_or(0);
            out.push(info);
        }
        Ok(out)
    }

    /// Rewrites the conductor's record in place, keeping its owner's lease.
    pub(super) async fn set_draining(&self, name: &str, draining: bool) -> Result<(), Error> {
        let key = self.keys.conductor(name);
        for _ in 0..16 {
            let Some(kv) = self.get(key.clone(), None, "reading a conductor").await?.take_kvs().pop() else {
                return Err(Error::InvalidInput(format!("no live conductor named {name:?}")));
            };
            let mut info: ConductorInfo = decode(kv.value(), "conductor")?;
            info.draining = draining;
            let txn =
                Txn::new().when([Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision())]).and_then([
                    TxnOp::put(key.clone(), encode(&info, "conductor")?, Some(PutOptions::new().with_ignore_lease())),
                ]);
            if self.txn(txn, &format!("updating conductor {name}")).await?.succeeded() {
                return Ok(());
            }
        }
        Err(Error::Unavailable { message: format!("conductor {name} kept changing"), source: None })
    }
}
