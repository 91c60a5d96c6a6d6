//! Auth and users routes: register, login, logout and the caller's own profile.

use super::{authentication::ClientAddress, *};

#[derive(Debug, Deserialize)]
pub(super) struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

pub(super) async fn register(
    State(gw): State<Gateway>,
    client: ClientAddress,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_text(
        "first_name",
        &body.first_name,
        0,
        crate::services::user::MAX_NAME_CHARS,
    )?;
    check_text(
        "last_name",
        &body.last_name,
        0,
        crate::services::user::MAX_NAME_CHARS,
    )?;
    let account = gw
        .auth
        .clone()
        .register(client.request(RegisterRequest {
            email: body.email,
            password: body.password,
        }))
        .await?
        .into_inner();
    let profile = CreateUserRequest {
        id: account.user_id.clone(),
        email: account.email.clone(),
        first_name: body.first_name,
        last_name: body.last_name,
    };
    // The account exists now, so a failed profile write must not fail the registration (a retry
    // would only meet "already registered"); `GET /users/me` recreates a missing profile.
    if let Err(status) = gw.users.clone().create_user(profile).await {
        tracing::warn!(user_id = %account.user_id, error = %status, "profile not created at registration");
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": account.user_id, "email": account.email})),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginBody {
    email: String,
    password: String,
}

pub(super) async fn login(
    State(gw): State<Gateway>,
    client: ClientAddress,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    check_len("email", &body.email, 0, auth::MAX_EMAIL_LEN)?;
    check_len("password", &body.password, 0, auth::MAX_PASSWORD_CHARS)?;
    let session = gw
        .auth
        .clone()
        .login(client.request(LoginRequest {
            email: body.email,
            password: body.password,
        }))
        .await?
        .into_inner();
    Ok(Json(
        json!({"id": session.user_id, "email": session.email, "token": session.token}),
    ))
}

pub(super) async fn logout(
    State(gw): State<Gateway>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    gw.auth
        .clone()
        .logout(LogoutRequest {
            token: caller.token.clone(),
        })
        .await?;
    gw.forget(&caller.token);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn me(State(gw): State<Gateway>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let found = gw
        .users
        .clone()
        .get_user(GetUserRequest {
            id: caller.user_id.clone(),
        })
        .await;
    let user = match found {
        Ok(user) => user.into_inner(),
        // Registration could not store the profile: make it now from what the token knows.
        Err(status) if status.code() == tonic::Code::NotFound => {
            let profile = CreateUserRequest {
                id: caller.user_id,
                email: caller.email,
                first_name: String::new(),
                last_name: String::new(),
            };
            gw.users.clone().create_user(profile).await?.into_inner()
        }
        Err(status) => return Err(status.into()),
    };
    Ok(Json(user_view(user)))
}
