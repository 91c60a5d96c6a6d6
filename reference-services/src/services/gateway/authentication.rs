//! The caller of an authenticated route: the bearer token, checked with the auth service on every
//! request.

use super::*;

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
    pub(super) async fn verify(&self, token: String) -> Result<Caller, ApiError> {
        let verified = self
            .auth
            .clone()
            .verify_token(VerifyTokenRequest {
                token: token.clone(),
            })
            .await?
            .into_inner();
        Ok(Caller {
            user_id: verified.user_id,
            email: verified.email,
            token,
        })
    }
}
