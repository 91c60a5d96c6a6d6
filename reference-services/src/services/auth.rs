//! The auth service (gRPC `AuthService`): owns credentials and sessions.
//!
//! Passwords are stored only as Argon2id hashes (computed on the blocking pool, because hashing
//! is deliberately CPU-heavy and would otherwise stall the async workers). A login issues a JWT;
//! logout records the token's id in `revoked_tokens` until it would have expired anyway, and
//! `VerifyToken` checks signature, expiry and revocation, so the gateway can refuse a logged-out
//! token on the very next request.
//!
//! Sign-ins are the one cheap request that costs the server dearly (one Argon2id hash: 7 MiB
//! and tens of milliseconds of CPU), so they are limited twice: register and login attempts are
//! throttled per account (the email) and per client address (the address the gateway saw,
//! forwarded as `x-forwarded-for` metadata), and hashes run on the blocking pool behind a
//! semaphore sized to the cores with a bounded queue. Whatever the load, memory stays at most
//! `permits × m_cost` for hashing, and a refused sign-in is `RESOURCE_EXHAUSTED` with a
//! `retry-after` (seconds) in its metadata, which the gateway answers as 429 with `Retry-After`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Result;
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{self, Output, ParamsString, SaltString},
};
use rand::RngCore;
use tonic::{Code, Request, Response, Status, metadata::MetadataMap};

use crate::{
    platform::{
        config::parse_env,
        http::Runtime,
        jwt::JwtKeys,
        limits::{KeyedLimit, Rate, Refused, WorkBound, WorkError},
        metrics::{KindLabels, Metrics},
        storage::{Db, db_status},
    },
    proto::{
        LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, RegisterRequest,
        RegisterResponse, VerifyTokenRequest, VerifyTokenResponse,
        auth_service_server::{AuthService, AuthServiceServer},
    },
};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in characters (bounds the work a single request can ask for).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest accepted email address, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// The one answer to every failed login, so it does not reveal which emails are registered.
const BAD_CREDENTIALS: &str = "invalid email or password";

/// The metadata key carrying the client address the gateway saw (one address, no list).
pub const CLIENT_ADDRESS_METADATA: &str = "x-forwarded-for";
/// The metadata key of a refusal's retry time, in whole seconds.
pub const RETRY_AFTER_METADATA: &str = "retry-after";

/// What the auth service needs besides its runtime.
#[derive(Clone)]
pub struct AuthSettings {
    pub keys: JwtKeys,
    /// Argon2id cost of new hashes (verification reads the cost stored in each hash).
    pub hashing: Params,
    pub limits: AuthLimits,
    /// The hashing bound to use instead of one made from `limits` (tests read its peak).
    pub hash_bound: Option<Arc<WorkBound>>,
}

impl AuthSettings {
    /// JWT keys and limits from the environment, and [`hashing_cost`].
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            keys: JwtKeys::from_env()?,
            hashing: hashing_cost(),
            limits: AuthLimits::from_env()?,
            hash_bound: None,
        })
    }
}

/// Argon2id cost of new hashes: OWASP's 7 MiB, 5 passes, 1 lane, which its Password Storage
/// Cheat Sheet lists as defending as well as the crate's default (19 MiB, 2 passes) at about the
/// same CPU. The smaller memory is what lets the service stay near 30 MB resident with one hash
/// running per core; verification reads each stored hash's own cost, so older hashes still verify.
pub fn hashing_cost() -> Params {
    Params::new(7 * 1024, 5, 1, None).expect("valid Argon2 parameters")
}

/// How much sign-in work the service accepts (see the README's "Sign-in throttling").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLimits {
    /// Register and login attempts per account (email), successful or not.
    pub per_account: Rate,
    /// Register and login attempts per client address.
    pub per_address: Rate,
    /// Most keys each of the two limits tracks (about 100 bytes a key).
    pub max_tracked_keys: usize,
    /// Password hashes computed at once: hashing memory is at most this × the Argon2 m_cost.
    pub hash_permits: usize,
    /// Sign-ins waiting for a hash permit beyond which new ones are refused at once.
    pub hash_queue: usize,
}

impl Default for AuthLimits {
    /// 5 attempts per account, then one a minute; 100 per address, then ten a second (one
    /// address can be a whole office behind NAT, or a load generator); hashes one per core,
    /// with 32 sign-ins per core allowed to wait.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            per_account: Rate::new(5, Duration::from_secs(60)),
            per_address: Rate::new(100, Duration::from_millis(100)),
            max_tracked_keys: 100_000,
            hash_permits: cores,
            hash_queue: 32 * cores,
        }
    }
}

impl AuthLimits {
    /// The defaults, each overridden by its variable when set: `AUTH_ACCOUNT_BURST`,
    /// `AUTH_ACCOUNT_REFILL_MS`, `AUTH_ADDRESS_BURST`, `AUTH_ADDRESS_REFILL_MS`,
    /// `AUTH_MAX_TRACKED_KEYS`, `AUTH_HASH_PERMITS`, `AUTH_HASH_QUEUE`.
    pub fn from_env() -> Result<Self> {
        let d = Self::default();
        let rate = |burst: &str, refill: &str, default: Rate| -> Result<Rate> {
            let burst = parse_env::<u32>(burst)?.unwrap_or(default.burst.get());
            let per = parse_env::<u64>(refill)?.map_or(default.per, Duration::from_millis);
            Ok(Rate::new(burst, per))
        };
        Ok(Self {
            per_account: rate(
                "AUTH_ACCOUNT_BURST",
                "AUTH_ACCOUNT_REFILL_MS",
                d.per_account,
            )?,
            per_address: rate(
                "AUTH_ADDRESS_BURST",
                "AUTH_ADDRESS_REFILL_MS",
                d.per_address,
            )?,
            max_tracked_keys: parse_env("AUTH_MAX_TRACKED_KEYS")?.unwrap_or(d.max_tracked_keys),
            hash_permits: parse_env("AUTH_HASH_PERMITS")?.unwrap_or(d.hash_permits),
            hash_queue: parse_env("AUTH_HASH_QUEUE")?.unwrap_or(d.hash_queue),
        })
    }
}

/// Runs the auth service with settings from the environment.
pub async fn run(rt: Runtime) -> Result<()> {
    run_with(rt, AuthSettings::from_env()?).await
}

/// Runs the auth service with explicit settings (tests use cheap hashing parameters).
pub async fn run_with(rt: Runtime, settings: AuthSettings) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&schema()).await?;
    let service = Auth::new(db.clone(), settings, &rt.metrics).await?;

    let mut rt = rt;
    rt.readiness.add("db", move || {
        let db = db.clone();
        async move { db.ping().await }
    });
    let router = tonic::service::Routes::new(AuthServiceServer::new(service)).into_axum_router();
    rt.serve(router).await
}

fn schema() -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )"
        .to_string(),
        "CREATE TABLE IF NOT EXISTS revoked_tokens (
            jti TEXT PRIMARY KEY,
            expires_at BIGINT NOT NULL
        )"
        .to_string(),
    ]
}

/// The `AuthService` implementation.
#[derive(Clone)]
struct Auth {
    db: Db,
    keys: JwtKeys,
    hasher: Hasher,
    throttle: Arc<Throttle>,
    /// A hash of a random password, verified against when the email is unknown so that a failed
    /// login takes as long whether or not the account exists.
    decoy_hash: Arc<String>,
}

impl Auth {
    async fn new(db: Db, settings: AuthSettings, metrics: &Arc<Metrics>) -> Result<Self> {
        let limits = &settings.limits;
        let bound = settings.hash_bound.clone().unwrap_or_else(|| {
            Arc::new(WorkBound::new(
                limits.hash_permits,
                limits.hash_queue,
                Some(metrics.password_hashes_in_flight.clone()),
            ))
        });
        let hasher = Hasher::new(settings.hashing, bound);
        let decoy_password = String::from_utf8(crate::platform::jwt::random_secret())?;
        let decoy_hash = hasher
            .hash(decoy_password)
            .await
            .map_err(|status| anyhow::anyhow!("hashing the decoy password: {status}"))?;
        tracing::info!(
            hash_permits = hasher.bound.permits(),
            ?limits,
            "sign-in limits"
        );
        Ok(Self {
            db,
            keys: settings.keys,
            hasher,
            throttle: Arc::new(Throttle::new(limits, metrics.clone())),
            decoy_hash: Arc::new(decoy_hash),
        })
    }

    async fn find_credentials(&self, email: &str) -> Result<Option<(String, String)>, Status> {
        sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_status)
    }

    async fn email_taken(&self, email: &str) -> Result<bool, Status> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_status)?;
        Ok(row.is_some())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, Status> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT jti FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.db.pool)
                .await
                .map_err(db_status)?;
        Ok(row.is_some())
    }

    /// Verifies signature and expiry; every failure is `Unauthenticated`.
    fn claims(&self, token: &str) -> Result<crate::platform::jwt::Claims, Status> {
        self.keys
            .verify(token)
            .map_err(|_| Status::unauthenticated("invalid or expired token"))
    }
}

#[tonic::async_trait]
impl AuthService for Auth {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let address = client_address(&request);
        let RegisterRequest { email, password } = request.into_inner();
        let email = normalize_email(&email).map_err(Status::invalid_argument)?;
        check_password(&password).map_err(Status::invalid_argument)?;
        self.throttle.admit(&address, Some(&email))?;
        // Checked before hashing so a duplicate does not cost a hash; the insert below still
        // settles a race between two registrations of the same email.
        if self.email_taken(&email).await? {
            return Err(Status::already_exists("email already registered"));
        }
        let hash = self.hasher.hash(password).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(&id)
        .bind(&email)
        .bind(&hash)
        .bind(now())
        .execute(&self.db.pool)
        .await
        .map_err(db_status)?;
        if inserted.rows_affected() == 0 {
            return Err(Status::already_exists("email already registered"));
        }
        tracing::info!(user_id = %id, "user registered");
        Ok(Response::new(RegisterResponse { user_id: id, email }))
    }

    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let address = client_address(&request);
        let LoginRequest { email, password } = request.into_inner();
        let email = email.trim().to_lowercase();
        // NUL cannot be in a stored email (and Postgres refuses it as a parameter).
        let impossible = email.len() > MAX_EMAIL_LEN || email.contains('\0');
        // Counted before the password check: a guess at a non-existent account is a guess too.
        // An email that cannot exist is no account's, and would only bloat the table.
        self.throttle
            .admit(&address, (!impossible).then_some(email.as_str()))?;
        if impossible || password.chars().count() > MAX_PASSWORD_CHARS {
            return Err(Status::unauthenticated(BAD_CREDENTIALS));
        }
        let credentials = self.find_credentials(&email).await?;
        let stored = credentials
            .as_ref()
            .map_or(self.decoy_hash.as_str(), |(_, hash)| hash);
        let matches = self.hasher.verify(password, stored.to_string()).await?;
        let Some((user_id, _)) = credentials.filter(|_| matches) else {
            return Err(Status::unauthenticated(BAD_CREDENTIALS));
        };
        let (token, claims) = self
            .keys
            .issue(&user_id, &email, now())
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(LoginResponse {
            user_id,
            email,
            token,
            expires_at: claims.exp,
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        let claims = self.claims(&request.into_inner().token)?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&claims.jti)
        .bind(claims.exp)
        .execute(&self.db.pool)
        .await
        .map_err(db_status)?;
        // Expired tokens are refused on their expiry alone, so their revocations can go.
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now() - 60)
            .execute(&self.db.pool)
            .await
            .map_err(db_status)?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn verify_token(
        &self,
        request: Request<VerifyTokenRequest>,
    ) -> Result<Response<VerifyTokenResponse>, Status> {
        let claims = self.claims(&request.into_inner().token)?;
        if self.is_revoked(&claims.jti).await? {
            return Err(Status::unauthenticated("token has been revoked"));
        }
        Ok(Response::new(VerifyTokenResponse {
            user_id: claims.sub,
            email: claims.email,
            token_id: claims.jti,
            expires_at: claims.exp,
        }))
    }
}

/// The two sign-in rate limits, checked address first so that an address already refused does
/// not spend the budget of the accounts it tries.
struct Throttle {
    per_account: KeyedLimit<String>,
    per_address: KeyedLimit<String>,
    metrics: Arc<Metrics>,
}

impl Throttle {
    fn new(limits: &AuthLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            per_account: KeyedLimit::new(
                limits.per_account,
                limits.max_tracked_keys,
                "too many sign-in attempts for this account",
            ),
            per_address: KeyedLimit::new(
                limits.per_address,
                limits.max_tracked_keys,
                "too many sign-in attempts from this address",
            ),
            metrics,
        }
    }

    fn admit(&self, address: &str, account: Option<&str>) -> Result<(), Status> {
        let refused = |kind: &str, refusal: Refused| {
            self.metrics
                .auth_throttled
                .get_or_create(&KindLabels { kind: kind.into() })
                .inc();
            tracing::info!(kind, client = address, "sign-in throttled");
            throttled(refusal)
        };
        self.per_address
            .check(&address.to_string())
            .map_err(|r| refused("address", r))?;
        match account {
            Some(email) => self
                .per_account
                .check(&email.to_string())
                .map_err(|r| refused("account", r)),
            None => Ok(()),
        }
    }
}

/// `RESOURCE_EXHAUSTED` with the retry time in the `retry-after` metadata (whole seconds).
fn throttled(refusal: Refused) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(RETRY_AFTER_METADATA, refusal.retry_after_secs().into());
    Status::with_metadata(Code::ResourceExhausted, refusal.reason, metadata)
}

/// The key of the per-address limit: the address the gateway forwarded, else the caller's own
/// address, else one shared bucket. IPv6 addresses count per /64, the block one host usually
/// has to itself.
fn client_address<T>(request: &Request<T>) -> String {
    let forwarded = request
        .metadata()
        .get(CLIENT_ADDRESS_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    let peer = || {
        request
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
    };
    match forwarded.or_else(peer).map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unattributed".to_string(),
    }
}

/// Argon2id hashing on the blocking thread pool, at most `bound.permits()` hashes at once, each
/// in one of at most that many reused working memories.
///
/// The reuse is what bounds memory: with a fresh allocation per hash (19 MiB, the cost then),
/// freed memory stayed cached in the allocator's per-thread arenas, so 100 logins with 2 permits
/// left the process at ~550 MB resident although never more than 2 hashes ran at once (measured
/// on the embedded stack). Pooled, hashing holds `permits × m_cost` and no more.
#[derive(Clone)]
struct Hasher {
    argon: Argon2<'static>,
    bound: Arc<WorkBound>,
    memories: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Hasher {
    fn new(params: Params, bound: Arc<WorkBound>) -> Self {
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            bound,
            memories: Arc::default(),
        }
    }

    async fn hash(&self, password: String) -> Result<String, Status> {
        let (argon, memories) = (self.argon.clone(), self.memories.clone());
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        self.bound
            .run(move || hash_password(&argon, &memories, password.as_bytes(), &salt))
            .await
            .map_err(work_status)?
            .map_err(|e| Status::internal(e.to_string()))
    }

    /// Whether `password` matches `stored` (a PHC string; its own cost parameters apply).
    async fn verify(&self, password: String, stored: String) -> Result<bool, Status> {
        let memories = self.memories.clone();
        self.bound
            .run(move || verify_password(&memories, password.as_bytes(), &stored).is_ok())
            .await
            .map_err(work_status)
    }
}

/// Runs `f` with `blocks` blocks of working memory from the pool (a hash stored with a higher
/// cost than today's gets a bigger memory, which then stays in the pool).
fn with_memory<T>(
    memories: &Mutex<Vec<Vec<Block>>>,
    blocks: usize,
    f: impl FnOnce(&mut [Block]) -> T,
) -> T {
    let pooled = memories.lock().expect("memory pool lock").pop();
    let mut memory = pooled.unwrap_or_default();
    if memory.len() < blocks {
        memory = vec![Block::default(); blocks];
    }
    let out = f(&mut memory[..blocks]);
    memories.lock().expect("memory pool lock").push(memory);
    out
}

/// The PHC string of `password` hashed with `argon`'s parameters and `salt`, exactly as
/// `PasswordHasher::hash_password` makes it, but in pooled memory.
fn hash_password(
    argon: &Argon2<'_>,
    memories: &Mutex<Vec<Vec<Block>>>,
    password: &[u8],
    salt: &[u8],
) -> password_hash::Result<String> {
    let salt = SaltString::encode_b64(salt)?;
    let mut raw_salt = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut raw_salt)?;
    let params = argon.params();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = with_memory(memories, params.block_count(), |memory| {
        Output::init_with(len, |out| {
            Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
        })
    })?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// `Ok` when `password` matches the PHC string `stored`, computed with the algorithm, version and
/// costs stored in it (as `PasswordVerifier::verify_password` does, but in pooled memory).
fn verify_password(
    memories: &Mutex<Vec<Vec<Block>>>,
    password: &[u8],
    stored: &str,
) -> password_hash::Result<()> {
    let hash = PasswordHash::new(stored)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(password_hash::Error::Password);
    };
    let params = Params::try_from(&hash)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let argon = Argon2::new(
        Algorithm::try_from(hash.algorithm)?,
        version,
        params.clone(),
    );
    let mut raw_salt = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut raw_salt)?;
    let computed = with_memory(memories, params.block_count(), |memory| {
        Output::init_with(expected.len(), |out| {
            Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
        })
    })?;
    // `Output`'s equality is constant-time.
    if computed == expected {
        Ok(())
    } else {
        Err(password_hash::Error::Password)
    }
}

fn work_status(error: WorkError) -> Status {
    match error {
        WorkError::Busy(refusal) => {
            Metrics::global()
                .auth_throttled
                .get_or_create(&KindLabels {
                    kind: "busy".into(),
                })
                .inc();
            throttled(refusal)
        }
        WorkError::Stopped => Status::unavailable("the auth service is stopping"),
        WorkError::Failed(e) => Status::internal(e),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Trims and lowercases `raw` and checks it is a plausible address: one `@`, a dot-atom local
/// part of at most 64 characters, and a domain of at least two DNS labels.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    const INVALID: &str = "email must be a valid address like name@example.com";
    let email = raw.trim().to_lowercase();
    if email.len() > MAX_EMAIL_LEN {
        return Err("email must be at most 254 characters");
    }
    let (local, domain) = email.split_once('@').ok_or(INVALID)?;
    if valid_local_part(local) && valid_domain(domain) {
        Ok(email)
    } else {
        Err(INVALID)
    }
}

fn valid_local_part(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    let atom_char = |c: char| c.is_ascii_alphanumeric() || SPECIALS.contains(c);
    (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atom_char))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let valid_label = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(valid_label)
}

/// Checks the password length rules (counted in characters, as users count them).
pub fn check_password(password: &str) -> Result<(), &'static str> {
    match password.chars().count() {
        n if n < MIN_PASSWORD_CHARS => Err("password must be at least 8 characters"),
        n if n > MAX_PASSWORD_CHARS => Err("password must be at most 128 characters"),
        _ => Ok(()),
    }
}

/// Settings with the cheapest Argon2 parameters, so tests do not spend seconds hashing.
#[cfg(test)]
pub(crate) fn test_settings() -> AuthSettings {
    AuthSettings {
        keys: JwtKeys::from_secret(&crate::platform::jwt::random_secret()).unwrap(),
        hashing: Params::new(Params::MIN_M_COST, 1, 1, None).unwrap(),
        limits: AuthLimits::default(),
        hash_bound: None,
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::{
        platform::{grpc, jwt::random_secret},
        proto::auth_service_client::AuthServiceClient,
        testkit,
    };

    async fn start_auth(
        dir: &std::path::Path,
    ) -> (testkit::Running, AuthServiceClient<grpc::TracedChannel>) {
        let running = testkit::start("auth", dir, |rt| run_with(rt, test_settings())).await;
        let client = AuthServiceClient::new(grpc::channel(&running.url).unwrap());
        (running, client)
    }

    fn register(email: &str, password: &str) -> RegisterRequest {
        RegisterRequest {
            email: email.into(),
            password: password.into(),
        }
    }

    fn login(email: &str, password: &str) -> LoginRequest {
        LoginRequest {
            email: email.into(),
            password: password.into(),
        }
    }

    #[test]
    fn email_rules() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        assert!(normalize_email("first.last+tag@mail.example.org").is_ok());
        for bad in [
            "",
            "plain",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@@example.com",
            "a b@example.com",
            ".ada@example.com",
            "ada..b@example.com",
            "ada@-bad.com",
            "ada@exa_mple.com",
            "ada@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be refused");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(normalize_email(&long_local).is_err());
    }

    #[test]
    fn pooled_hashing_agrees_with_the_argon2_crate() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let params = Params::new(Params::MIN_M_COST, 1, 1, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let memories = Mutex::new(Vec::new());
        let ours = hash_password(&argon, &memories, b"correct horse", &[7u8; 16]).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon.verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon.verify_password(b"wrong horse", &parsed).is_err());

        let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
        let theirs = argon
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            hash_password(&argon, &memories, b"battery staple", &[9u8; 16]).unwrap(),
            theirs
        );
        assert!(verify_password(&memories, b"battery staple", &theirs).is_ok());
        assert!(verify_password(&memories, b"battery stable", &theirs).is_err());
        // A hash stored with a higher cost than today's still verifies.
        let costly = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let stored = costly.hash_password(b"old", &salt).unwrap().to_string();
        assert!(verify_password(&memories, b"old", &stored).is_ok());
        assert!(memories.lock().unwrap().len() <= 1, "one job, one memory");
    }

    #[test]
    fn new_hashes_take_todays_cost_and_older_ones_still_verify() {
        use argon2::PasswordHasher;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, hashing_cost());
        let memories = Mutex::new(Vec::new());
        let ours = hash_password(&argon, &memories, b"correct horse", &[3u8; 16]).unwrap();
        assert!(ours.contains("$m=7168,t=5,p=1$"), "{ours}");
        assert!(verify_password(&memories, b"correct horse", &ours).is_ok());
        let pooled: usize = memories.lock().unwrap().iter().map(Vec::len).sum();
        assert_eq!(pooled * 1024, 7 * 1024 * 1024, "one 7 MiB working memory");
        // Accounts registered under the earlier cost (the crate's default) keep signing in.
        let salt = SaltString::encode_b64(&[5u8; 16]).unwrap();
        let before = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(before.contains("$m=19456,t=2,p=1$"), "{before}");
        assert!(verify_password(&memories, b"battery staple", &before).is_ok());
        assert!(verify_password(&memories, b"battery stable", &before).is_err());
    }

    #[test]
    fn password_rules() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(
            check_password("ééééééé").is_err(),
            "counted in characters, not bytes"
        );
        assert!(check_password(&"x".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn register_login_verify_logout() {
        let dir = tempfile::tempdir().unwrap();
        let (_auth, mut client) = start_auth(dir.path()).await;

        let registered = client
            .register(register("Ada@Example.com", "correct horse"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(registered.email, "ada@example.com");

        let session = client
            .login(login("ada@example.com", "correct horse"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(session.user_id, registered.user_id);
        assert!(session.expires_at > now());

        let verified = client
            .verify_token(VerifyTokenRequest {
                token: session.token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(verified.user_id, registered.user_id);
        assert_eq!(verified.email, "ada@example.com");

        client
            .logout(LogoutRequest {
                token: session.token.clone(),
            })
            .await
            .unwrap();
        let refused = client
            .verify_token(VerifyTokenRequest {
                token: session.token,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);

        // A new login gets a new, valid token.
        let again = client
            .login(login("ADA@example.com", "correct horse"))
            .await
            .unwrap();
        let token = again.into_inner().token;
        assert!(
            client
                .verify_token(VerifyTokenRequest { token })
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn bad_credentials_and_bad_input_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_auth, mut client) = start_auth(dir.path()).await;
        client
            .register(register("bob@example.com", "hunter2hunter2"))
            .await
            .unwrap();

        let duplicate = client
            .register(register("BOB@example.com", "another-pass"))
            .await;
        assert_eq!(duplicate.unwrap_err().code(), Code::AlreadyExists);

        let short = client
            .register(register("carol@example.com", "short"))
            .await;
        assert_eq!(short.unwrap_err().code(), Code::InvalidArgument);
        let malformed = client
            .register(register("not-an-email", "long enough"))
            .await;
        assert_eq!(malformed.unwrap_err().code(), Code::InvalidArgument);

        let wrong_password = client
            .login(login("bob@example.com", "wrong password"))
            .await
            .unwrap_err();
        let unknown_email = client
            .login(login("nobody@example.com", "hunter2hunter2"))
            .await
            .unwrap_err();
        assert_eq!(wrong_password.code(), Code::Unauthenticated);
        assert_eq!(unknown_email.code(), Code::Unauthenticated);
        assert_eq!(wrong_password.message(), unknown_email.message());

        let forged = client
            .verify_token(VerifyTokenRequest {
                token: "a.b.c".into(),
            })
            .await;
        assert_eq!(forged.unwrap_err().code(), Code::Unauthenticated);
    }

    #[tokio::test]
    async fn tokens_from_other_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_auth, mut client) = start_auth(dir.path()).await;
        let foreign_keys = JwtKeys::from_secret(&random_secret()).unwrap();
        let (token, _) = foreign_keys
            .issue("someone", "x@example.com", now())
            .unwrap();
        let refused = client
            .verify_token(VerifyTokenRequest {
                token: token.clone(),
            })
            .await;
        assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
        let logout = client.logout(LogoutRequest { token }).await;
        assert_eq!(logout.unwrap_err().code(), Code::Unauthenticated);
    }

    /// Settings whose limits are `limits` (cheap hashing, as in [`test_settings`]).
    fn limited(limits: AuthLimits) -> AuthSettings {
        AuthSettings {
            limits,
            ..test_settings()
        }
    }

    /// `message` as if the gateway forwarded it for a client at `address`.
    fn from_address<T>(message: T, address: &str) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert(CLIENT_ADDRESS_METADATA, address.parse().unwrap());
        request
    }

    fn retry_after(status: &Status) -> u64 {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let value = status
            .metadata()
            .get(RETRY_AFTER_METADATA)
            .expect("retry-after");
        value.to_str().unwrap().parse().unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn failed_logins_for_one_account_are_throttled() {
        let dir = tempfile::tempdir().unwrap();
        let limits = AuthLimits {
            per_account: Rate::new(4, HOUR),
            ..AuthLimits::default()
        };
        let running = testkit::start("auth", dir.path(), |rt| run_with(rt, limited(limits))).await;
        let mut client = AuthServiceClient::new(grpc::channel(&running.url).unwrap());
        client
            .register(register("eve@example.com", "right password"))
            .await
            .unwrap();
        // The account's budget is 4 attempts: the registration and 3 wrong guesses.
        for _ in 0..3 {
            let wrong = client.login(login("eve@example.com", "wrong guess")).await;
            assert_eq!(wrong.unwrap_err().code(), Code::Unauthenticated);
        }
        let refused = client
            .login(login("EVE@example.com ", "wrong guess"))
            .await
            .unwrap_err();
        assert!(
            retry_after(&refused) > 3000,
            "one attempt per hour comes back"
        );
        // Throttled means no answer at all, even to the right password.
        let right = client
            .login(login("eve@example.com", "right password"))
            .await
            .unwrap_err();
        assert_eq!(right.code(), Code::ResourceExhausted);
        // Other accounts are not affected.
        client
            .register(register("frank@example.com", "right password"))
            .await
            .unwrap();
        client
            .login(login("frank@example.com", "right password"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn many_accounts_from_one_address_are_throttled() {
        let dir = tempfile::tempdir().unwrap();
        let limits = AuthLimits {
            per_address: Rate::new(5, HOUR),
            ..AuthLimits::default()
        };
        let running = testkit::start("auth", dir.path(), |rt| run_with(rt, limited(limits))).await;
        let mut client = AuthServiceClient::new(grpc::channel(&running.url).unwrap());
        for n in 0..5 {
            let guess = login(&format!("user{n}@example.com"), "password1");
            let status = client
                .login(from_address(guess, "203.0.113.7"))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
        }
        let sixth = login("user5@example.com", "password1");
        let refused = client
            .login(from_address(sixth, "203.0.113.7"))
            .await
            .unwrap_err();
        assert!(retry_after(&refused) > 3000);
        let signup = register("new@example.com", "long enough");
        let refused = client
            .register(from_address(signup, "203.0.113.7"))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::ResourceExhausted,
            "register counts too"
        );
        // The forwarded address is the key, not the connection (every call here shares one).
        let elsewhere = login("user5@example.com", "password1");
        let status = client
            .login(from_address(elsewhere, "203.0.113.8"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        // IPv6 clients count per /64.
        for n in 0..5 {
            let guess = login(&format!("v6-{n}@example.com"), "password1");
            let address = format!("2001:db8:1:2::{n}");
            let status = client
                .login(from_address(guess, &address))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
        }
        let same_block = login("v6-5@example.com", "password1");
        let refused = client
            .login(from_address(same_block, "2001:db8:1:2:ffff::1"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hundred_concurrent_logins_stay_within_the_hashing_bound() {
        let dir = tempfile::tempdir().unwrap();
        // Unlimited rates, so every login reaches the hasher; 2 MiB hashes, so that unbounded
        // concurrent verifications would overlap far beyond 2.
        let limits = AuthLimits {
            per_account: Rate::new(1000, HOUR),
            per_address: Rate::new(1000, HOUR),
            ..AuthLimits::default()
        };
        let bound = Arc::new(WorkBound::new(2, 8, None));
        let settings = AuthSettings {
            hashing: Params::new(2 * 1024, 1, 1, None).unwrap(),
            hash_bound: Some(bound.clone()),
            ..limited(limits)
        };
        let running = testkit::start("auth", dir.path(), |rt| run_with(rt, settings)).await;
        let client = AuthServiceClient::new(grpc::channel(&running.url).unwrap());
        for n in 0..10 {
            let account = register(&format!("c{n}@example.com"), "password1");
            client.clone().register(account).await.unwrap();
        }
        let logins = (0..100).map(|i| {
            let mut client = client.clone();
            let credentials = login(&format!("c{}@example.com", i % 10), "password1");
            tokio::spawn(async move { client.login(credentials).await })
        });
        let (mut ok, mut throttled) = (0, 0);
        for answer in futures::future::join_all(logins).await {
            match answer.unwrap() {
                Ok(_) => ok += 1,
                Err(status) => {
                    assert!(retry_after(&status) >= 1);
                    throttled += 1;
                }
            }
        }
        assert_eq!(ok + throttled, 100);
        assert!(ok >= 10, "at least the admitted ones succeed: {ok}");
        let peak = bound.peak();
        assert!((1..=2).contains(&peak), "hashes in flight peaked at {peak}");
        // Still serving.
        client
            .clone()
            .login(login("c0@example.com", "password1"))
            .await
            .unwrap();
    }
}
