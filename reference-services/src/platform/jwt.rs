//! JWT signing and verification (HS256). The secret comes from `JWT_SECRET` or `JWT_SECRET_FILE`;
//! without either, a random secret is made at start (dev only: tokens then die with the process)
//! — never a constant in code.

use anyhow::{Context, Result, bail};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::config::non_empty_env;

/// Token lifetime.
pub const TOKEN_TTL_SECS: i64 = 3600;

/// What a token says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    pub email: String,
    /// Token id, revoked on logout.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signing and verification keys.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() < 32 {
            bail!("the JWT secret must be at least 32 bytes");
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// Keys from `JWT_SECRET` / `JWT_SECRET_FILE`, else a random per-process secret.
    pub fn from_env() -> Result<Self> {
        if let Some(secret) = non_empty_env("JWT_SECRET") {
            return Self::from_secret(secret.as_bytes()).context("JWT_SECRET");
        }
        if let Some(path) = non_empty_env("JWT_SECRET_FILE") {
            let secret =
                std::fs::read(&path).with_context(|| format!("reading JWT_SECRET_FILE {path}"))?;
            let trimmed = secret.trim_ascii();
            return Self::from_secret(trimmed).with_context(|| format!("JWT_SECRET_FILE {path}"));
        }
        tracing::warn!("no JWT_SECRET or JWT_SECRET_FILE: using a random secret for this process");
        Self::from_secret(&random_secret())
    }

    pub fn issue(&self, user_id: &str, email: &str, now: i64) -> Result<(String, Claims)> {
        let claims = Claims {
            sub: user_id.to_string(),
            email: email.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + TOKEN_TTL_SECS,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    /// Verifies signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims)
    }
}

/// 32 random bytes, hex-encoded (so they can be passed through the environment).
pub fn random_secret() -> Vec<u8> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn issued_tokens_verify_and_foreign_ones_do_not() {
        let keys = JwtKeys::from_secret(&random_secret()).unwrap();
        let (token, claims) = keys.issue("u1", "a@example.com", now()).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        let other = JwtKeys::from_secret(&random_secret()).unwrap();
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = JwtKeys::from_secret(&random_secret()).unwrap();
        let (token, _) = keys
            .issue("u1", "a@example.com", now() - 2 * TOKEN_TTL_SECS)
            .unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::from_secret(b"short").is_err());
    }
}
