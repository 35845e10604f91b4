//! `--post-rate PER_SEC[:BURST]`: how fast one caller may post jobs to this conductor.
//!
//! One token bucket per caller identity: the auth file's identity name when callers
//! are authenticated, else the caller's IP address. A bucket holds `BURST` tokens
//! (default: the rate rounded up, at least 1), refills at `PER_SEC`, and each post
//! takes one. A post finding its bucket empty is refused with RESOURCE_EXHAUSTED
//! naming the limit and when a token will be there (also in the `retry-after-ms`
//! metadata), before anything is read or written: under a flood, a caller gets
//! `BURST` posts at once and then `PER_SEC` a second, the rest cost the conductor
//! one map lookup each and never reach the board, and other callers are not slowed.
//! The limit is per conductor: a caller spreading posts over N conductors gets N times it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::Status;

/// Buckets kept before idle (full) ones are dropped: a flood from many addresses cannot grow the map without bound.
const PRUNE_ABOVE: usize = 4096;

/// The configured limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostRate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Most tokens a bucket holds: the posts a caller may make at once.
    pub burst: u32,
}

impl std::str::FromStr for PostRate {
    type Err = String;

    /// `10`, `10:50`, `0.5:3`.
    fn from_str(text: &str) -> Result<PostRate, String> {
        let (rate, burst) = text.split_once(':').map_or((text, None), |(r, b)| (r, Some(b)));
        let per_sec = rate
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0)
            .ok_or_else(|| format!("{rate:?} is not a rate above 0 (posts per second)"))?;
        let burst = match burst {
            None => per_sec.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            Some(b) => b
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| format!("{b:?} is not a burst of 1 or more"))?,
        };
        Ok(PostRate { per_sec, burst })
    }
}

impl std::fmt::Display for PostRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s (burst {})", self.per_sec, self.burst)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every caller seen.
#[derive(Debug)]
pub struct PostLimiter {
    rate: PostRate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl PostLimiter {
    /// A limiter with no caller seen yet.
    pub fn new(rate: PostRate) -> Self {
        PostLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token of `who`'s bucket now, or says how long until there is one.
    pub fn take(&self, who: &str) -> Result<(), Duration> {
        self.take_at(who, Instant::now())
    }

    fn take_at(&self, who: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.rate.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(who) {
            let per_sec = self.rate.per_sec;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let bucket = buckets.entry(who.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate.per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate.per_sec))
        }
    }

    /// [`PostLimiter::take`] for a request: the caller's identity, else its address.
    /// RESOURCE_EXHAUSTED naming the limit and the wait, with `retry-after-ms` metadata.
    pub fn admit<T>(&self, request: &tonic::Request<T>) -> Result<(), Status> {
        let who = match request.extensions().get::<crate::auth::Caller>().filter(|c| c.by != "none") {
            Some(caller) => format!("identity {}", caller.name),
            None => match request.remote_addr() {
                Some(addr) => format!("address {}", addr.ip()),
                None => "an unknown address".to_owned(),
            },
        };
        self.take(&who).map_err(|wait| {
            let ms = wait.as_millis().max(1);
            tracing::debug!(caller = %who, retry_after_ms = ms, "post refused by --post-rate");
            let mut status = Status::resource_exhausted(format!(
                "post rate limit of {} reached for {who}; retry after {ms} ms",
                self.rate
            ));
            if let Ok(value) = ms.to_string().parse() {
                status.metadata_mut().insert("retry-after-ms", value);
            }
            status
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_an_optional_burst() {
        assert_eq!("10".parse(), Ok(PostRate { per_sec: 10.0, burst: 10 }));
        assert_eq!("0.5".parse(), Ok(PostRate { per_sec: 0.5, burst: 1 }));
        assert_eq!("2:50".parse(), Ok(PostRate { per_sec: 2.0, burst: 50 }));
        for bad in ["", "0", "-1", "x", "1:0", "1:x", "inf"] {
            assert!(bad.parse::<PostRate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate_per_caller() {
        let limiter = PostLimiter::new("2:3".parse().unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at("a", start), Ok(()));
        }
        assert_eq!(limiter.take_at("a", start), Err(Duration::from_millis(500)));
        assert_eq!(limiter.take_at("b", start), Ok(()), "another caller has its own bucket");
        assert_eq!(limiter.take_at("a", start + Duration::from_millis(500)), Ok(()));
        assert!(limiter.take_at("a", start + Duration::from_millis(600)).is_err());
        // An idle caller's bucket fills up to the burst, no more.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.take_at("a", later), Ok(()));
        }
        assert!(limiter.take_at("a", later).is_err());
    }

    #[test]
    fn idle_buckets_are_dropped_when_there_are_many() {
        let limiter = PostLimiter::new("1:1".parse().unwrap());
        let start = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            limiter.take_at(&format!("c{i}"), start).unwrap();
        }
        limiter.take_at("new", start + Duration::from_secs(5)).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
