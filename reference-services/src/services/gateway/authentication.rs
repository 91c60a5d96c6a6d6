//! The caller of an authenticated route: the bearer token, checked with the auth service (whose
//! answer the gateway keeps a few seconds, see [`super::token_cache`]); and the client's network
//! address, which the auth service's sign-in limits key on.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::OnceLock,
};

use axum::extract::ConnectInfo;

use super::token_cache::Verified;
use super::*;
use prometheus_client::metrics::counter::Counter;

use crate::platform::metrics::{KindLabels, Metrics};

/// The verified caller of an authenticated route. Extracting it calls `VerifyToken`, so a
/// missing, invalid, expired or revoked token ends the request with 401 before anything else.
pub struct Caller {
    pub user_id: String,
    pub email: String,
    pub token: String,
}

impl FromRequestParts<Gateway> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Self, ApiError> {
        match bearer_token(&parts.headers)? {
            Some(token) => gateway.verify(token).await,
            None => Err(ApiError::unauthorized("missing bearer token")),
        }
    }
}

/// The caller when a token is sent, nobody otherwise (an invalid token is still a 401).
pub struct OptionalCaller(pub Option<Caller>);

impl FromRequestParts<Gateway> for OptionalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Self, ApiError> {
        match bearer_token(&parts.headers)? {
            Some(token) => Ok(Self(Some(gateway.verify(token).await?))),
            None => Ok(Self(None)),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` without the header.
pub(super) fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::unauthorized("expected Authorization: Bearer <token>");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(malformed());
    }
    Ok(Some(token.to_string()))
}

impl Gateway {
    /// The caller `token` belongs to: from the token cache, or else from auth (and then kept).
    pub(super) async fn verify(&self, token: String) -> Result<Caller, ApiError> {
        if let Some(known) = self.tokens.get(&token) {
            self.token_checks.cache.inc();
            return Ok(Caller {
                user_id: known.user_id,
                email: known.email,
                token,
            });
        }
        self.token_checks.auth.inc();
        let verified = self
            .auth
            .clone()
            .verify_token(VerifyTokenRequest {
                token: token.clone(),
            })
            .await?
            .into_inner();
        self.tokens.insert(
            &token,
            Verified {
                user_id: verified.user_id.clone(),
                email: verified.email.clone(),
            },
            verified.expires_at,
        );
        Ok(Caller {
            user_id: verified.user_id,
            email: verified.email,
            token,
        })
    }

    /// Forgets what auth said of `token`: it was just logged out.
    pub(super) fn forget(&self, token: &str) {
        self.tokens.remove(token);
    }
}

/// `gateway_token_checks_total{kind}` (the cache's hit ratio is `cache / (cache + auth)`), its
/// two series looked up once at start rather than on every request, and exported from 0.
pub struct TokenChecks {
    cache: Counter,
    auth: Counter,
}

impl TokenChecks {
    pub(super) fn new() -> Self {
        let family = &Metrics::global().gateway_token_checks;
        let series = |kind: &str| {
            family
                .get_or_create(&KindLabels { kind: kind.into() })
                .clone()
        };
        Self {
            cache: series("cache"),
            auth: series("auth"),
        }
    }
}

/// The client's address as far as the gateway can know it. By default that is the TCP peer and
/// a client-sent `X-Forwarded-For` is ignored (anyone can write one). Behind proxies that append
/// to `X-Forwarded-For` (an ingress controller, a load balancer), `GATEWAY_TRUSTED_PROXY_HOPS=N`
/// says how many: the client is then the entry N places from the right, the one the outermost
/// trusted proxy saw. `None` when the server runs without peer addresses (in-process routers).
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self(client_address(
            &parts.headers,
            peer,
            trusted_proxy_hops(),
        )))
    }
}

impl ClientAddress {
    /// `message` as a gRPC request carrying this address for the auth service.
    pub(super) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = self.0.and_then(|ip| ip.to_string().parse().ok()) {
            request
                .metadata_mut()
                .insert(auth::CLIENT_ADDRESS_METADATA, value);
        }
        request
    }
}

/// `GATEWAY_TRUSTED_PROXY_HOPS`, read once; an invalid value is logged and taken as 0 (trust
/// nobody), the safe reading.
fn trusted_proxy_hops() -> usize {
    static HOPS: OnceLock<usize> = OnceLock::new();
    *HOPS.get_or_init(|| {
        crate::platform::config::parse_env::<usize>("GATEWAY_TRUSTED_PROXY_HOPS")
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "ignoring GATEWAY_TRUSTED_PROXY_HOPS");
                None
            })
            .unwrap_or(0)
    })
}

/// The client address given the TCP `peer` and `hops` trusted proxies in front (see
/// [`ClientAddress`]). A chain shorter than `hops`, or an entry that is not an address, falls
/// back to the peer: the header did not come the way the configuration says.
pub(super) fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    hops: usize,
) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    chain
        .len()
        .checked_sub(hops)
        .and_then(|i| chain[i].parse().ok())
        .or(peer)
}
