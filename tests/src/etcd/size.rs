//! What a board's keys take in etcd: the bytes of its keys and values, and the database size
//! after a compaction and a defragmentation (what the quota counts). For benchmarks.

use etcd_client::{Client, CompactionOptions, GetOptions};

use crate::conductor::HarnessResult;

/// Compacts etcd's history up to now, physically. Auto-compaction may have got there
/// first, which is said on stderr and is no error.
pub async fn compact(endpoint: &str) -> HarnessResult<()> {
    let mut client = Client::connect([endpoint], None).await?;
    let revision = client.get("bench-revision-probe", None).await?.header().map_or(0, |h| h.revision());
    if let Err(e) = client.compact(revision, Some(CompactionOptions::new().with_physical())).await {
        eprintln!("  compaction at {revision}: {e}");
    }
    Ok(())
}

/// Bytes of keys and values under `prefix` (0 without one), and etcd's database size after a
/// compaction and a defragmentation.
pub async fn bytes(endpoint: &str, prefix: Option<&str>) -> HarnessResult<(u64, u64)> {
    let mut client = Client::connect([endpoint], None).await?;
    let mut logical = 0u64;
    if let Some(prefix) = prefix {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let mut from = prefix.as_bytes().to_vec();
        loop {
            let options = GetOptions::new().with_range(end.clone()).with_limit(10_000);
            let resp = client.get(from.clone(), Some(options)).await?;
            let Some(last) = resp.kvs().last() else { break };
            logical += resp.kvs().iter().map(|kv| (kv.key().len() + kv.value().len()) as u64).sum::<u64>();
            from = last.key().to_vec();
            from.push(0);
            if !resp.more() {
                break;
            }
        }
    }
    compact(endpoint).await?;
    client.defragment().await?;
    Ok((logical, client.status().await?.db_size() as u64))
}
