//! What the auth service said of a bearer token, kept for a few seconds: a checkout makes four
//! authenticated requests, and asking auth each time cost about a tenth of the platform's CPU
//! per flow (a gRPC round trip and a revocation lookup per request).
//!
//! The price is how late a revocation is seen: a token logged out through this gateway is
//! dropped from its cache at once, but one logged out elsewhere (another gateway replica, or
//! auth directly) is honoured here for at most the TTL more. Tokens are kept no longer than
//! they are valid, refusals are never kept, and the cache is bounded in entries, so memory is
//! too. `GATEWAY_TOKEN_CACHE_MS=0` turns it off (every request asks auth, as before).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;

/// What a verified token says of its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub user_id: String,
    pub email: String,
}

/// Verified tokens, each until the earlier of its expiry and the cache's TTL.
pub struct TokenCache {
    ttl: Duration,
    /// Least recently used first out when full; one lock, held for a lookup or an insert.
    entries: Option<Mutex<LruCache<String, (Verified, Instant)>>>,
}

/// Tokens kept at most: about 300 bytes each, so under 3 MB when full. Beyond it the least
/// recently used are evicted (and asked of auth again).
const CAPACITY: usize = 10_000;

impl TokenCache {
    /// A cache keeping answers `ttl` long; zero keeps nothing.
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            entries: (!ttl.is_zero()).then(|| Mutex::new(LruCache::new(CAPACITY))),
        }
    }

    /// The answer kept for `token`, unless it has expired.
    pub fn get(&self, token: &str) -> Option<Verified> {
        let mut entries = self.entries.as_ref()?.lock().expect("token cache lock");
        let (verified, until) = entries.get(token)?;
        if Instant::now() < *until {
            Some(verified.clone())
        } else {
            entries.remove(token);
            None
        }
    }

    /// Keeps auth's answer for `token`, which expires at `expires_at` (Unix seconds).
    pub fn insert(&self, token: &str, verified: Verified, expires_at: i64) {
        let Some(entries) = &self.entries else {
            return;
        };
        let left = expires_at - chrono::Utc::now().timestamp();
        let Ok(left) = u64::try_from(left) else {
            return;
        };
        let keep = self.ttl.min(Duration::from_secs(left));
        if !keep.is_zero() {
            let mut entries = entries.lock().expect("token cache lock");
            entries.insert(token.to_string(), (verified, Instant::now() + keep));
        }
    }

    /// Forgets `token` (it was logged out through this gateway).
    pub fn remove(&self, token: &str) {
        if let Some(entries) = &self.entries {
            entries.lock().expect("token cache lock").remove(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Verified {
        Verified {
            user_id: "u1".into(),
            email: "alice@example.com".into(),
        }
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn an_answer_is_kept_for_the_ttl_then_asked_again() {
        let cache = TokenCache::new(Duration::from_millis(200));
        assert_eq!(cache.get("t"), None);
        cache.insert("t", alice(), in_an_hour());
        assert_eq!(cache.get("t"), Some(alice()));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(cache.get("t"), None);
    }

    #[test]
    fn a_token_is_never_kept_past_its_expiry() {
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.insert("expired", alice(), chrono::Utc::now().timestamp() - 1);
        assert_eq!(cache.get("expired"), None);
        // Expiring within the second: kept at most until then, not for the minute.
        cache.insert("now", alice(), chrono::Utc::now().timestamp());
        assert_eq!(cache.get("now"), None);
    }

    #[test]
    fn a_logged_out_token_is_forgotten_at_once() {
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.insert("t", alice(), in_an_hour());
        cache.remove("t");
        assert_eq!(cache.get("t"), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = TokenCache::new(Duration::ZERO);
        cache.insert("t", alice(), in_an_hour());
        assert_eq!(cache.get("t"), None);
    }
}
