//! The auth service (gRPC `AuthService`): owns credentials and sessions.
//!
//! Passwords are stored only as Argon2id hashes (computed on the blocking pool, because hashing
//! is deliberately CPU-heavy and would otherwise stall the async workers). At most one hash per
//! core runs at a time: each takes 19 MiB, so a burst of 32 logins hashed at once made the
//! process 1.2 GB (glibc keeps freed blocks in per-thread arenas), and more hashes than cores
//! finish no sooner anyway. For the same reason glibc is told to give blocks of 1 MiB and more
//! straight back to the system (`M_MMAP_THRESHOLD`). A login issues a JWT;
//! logout records the token's id in `revoked_tokens` until it would have expired anyway, and
//! `VerifyToken` checks signature, expiry and revocation, so the gateway can refuse a logged-out
//! token on the very next request.

use std::sync::Arc;

use anyhow::Result;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use rand::RngCore;
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        http::Runtime,
        jwt::JwtKeys,
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

/// What the auth service needs besides its runtime.
#[derive(Clone)]
pub struct AuthSettings {
    pub keys: JwtKeys,
    /// Argon2id cost of new hashes (verification reads the cost stored in each hash).
    pub hashing: Params,
}

impl AuthSettings {
    /// JWT keys from the environment and the Argon2 defaults (19 MiB, 2 passes).
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            keys: JwtKeys::from_env()?,
            hashing: Params::DEFAULT,
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
    let service = Auth::new(db.clone(), settings).await?;

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
    /// A hash of a random password, verified against when the email is unknown so that a failed
    /// login takes as long whether or not the account exists.
    decoy_hash: Arc<String>,
}

impl Auth {
    async fn new(db: Db, settings: AuthSettings) -> Result<Self> {
        let hasher = Hasher::new(settings.hashing);
        let decoy_password = String::from_utf8(crate::platform::jwt::random_secret())?;
        let decoy_hash = hasher
            .hash(decoy_password)
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            db,
            keys: settings.keys,
            hasher,
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
        let RegisterRequest { email, password } = request.into_inner();
        let email = normalize_email(&email).map_err(Status::invalid_argument)?;
        check_password(&password).map_err(Status::invalid_argument)?;
        // Checked before hashing so a duplicate does not cost a hash; the insert below still
        // settles a race between two registrations of the same email.
        if self.email_taken(&email).await? {
            return Err(Status::already_exists("email already registered"));
        }
        let hash = self.hasher.hash(password).await.map_err(Status::internal)?;
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
        let LoginRequest { email, password } = request.into_inner();
        let email = email.trim().to_lowercase();
        // NUL cannot be in a stored email (and Postgres refuses it as a parameter).
        let impossible = email.len() > MAX_EMAIL_LEN || email.contains('\0');
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
        }))
    }
}

/// Argon2id hashing on the blocking thread pool, at most [`Hasher::permits`] at a time.
#[derive(Clone)]
struct Hasher {
    argon: Argon2<'static>,
    running: Arc<tokio::sync::Semaphore>,
}

impl Hasher {
    fn new(params: Params) -> Self {
        return_large_blocks_to_the_system();
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            running: Arc::new(tokio::sync::Semaphore::new(Self::permits())),
        }
    }

    /// Hashes that may run at once: one per core.
    fn permits() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    async fn hash(&self, password: String) -> Result<String, String> {
        let argon = self.argon.clone();
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let _permit = self.running.acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Whether `password` matches `stored` (a PHC string; its own cost parameters apply).
    async fn verify(&self, password: String, stored: String) -> Result<bool, Status> {
        let argon = self.argon.clone();
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .is_ok_and(|hash| argon.verify_password(password.as_bytes(), &hash).is_ok())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))
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

/// glibc serves a freed large block's size from its heaps from then on (a dynamic mmap
/// threshold), and its per-thread arenas keep such blocks after they are freed: every blocking
/// thread that ever hashed would hold 19 MiB. A fixed threshold maps blocks of 1 MiB and more
/// and unmaps them on free. Process-wide; harmless for the other services of a test process.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; M_MMAP_THRESHOLD with 1 MiB is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Settings with the cheapest Argon2 parameters, so tests do not spend seconds hashing.
#[cfg(test)]
pub(crate) fn test_settings() -> AuthSettings {
    AuthSettings {
        keys: JwtKeys::from_secret(&crate::platform::jwt::random_secret()).unwrap(),
        hashing: Params::new(Params::MIN_M_COST, 1, 1, None).unwrap(),
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
}
