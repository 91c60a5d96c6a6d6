//! The user service (gRPC `UserService`): profiles (email, names) keyed by the id the auth
//! service gave the account. Credentials stay in auth, so a profile read never touches a hash.
//!
//! `CreateUser` is idempotent on the id: the gateway may retry it after a timeout, and the second
//! call returns the profile the first one stored instead of failing.

use anyhow::Result;
use tonic::{Request, Response, Status};

use crate::{
    platform::{
        http::Runtime,
        storage::{Db, db_status},
    },
    proto::{
        CreateUserRequest, GetUserRequest, User,
        user_service_server::{UserService, UserServiceServer},
    },
};

/// Longest accepted first or last name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Runs the user service.
pub async fn run(rt: Runtime) -> Result<()> {
    let db = Db::connect(&rt.config).await?;
    db.migrate(&["CREATE TABLE IF NOT EXISTS profiles (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            -- milliseconds since the Unix epoch, like every timestamp of the platform
            created_at BIGINT NOT NULL
        )"
    .to_string()])
        .await?;

    let mut rt = rt;
    let probe = db.clone();
    rt.readiness.add("db", move || {
        let db = probe.clone();
        async move { db.ping().await }
    });
    let router =
        tonic::service::Routes::new(UserServiceServer::new(Users { db })).into_axum_router();
    rt.serve(router).await
}

/// The `UserService` implementation.
struct Users {
    db: Db,
}

type ProfileRow = (String, String, String, String, i64);

impl Users {
    async fn find(&self, id: &str) -> Result<Option<User>, Status> {
        let row: Option<ProfileRow> = sqlx::query_as(
            "SELECT id, email, first_name, last_name, created_at FROM profiles WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_status)?;
        Ok(
            row.map(|(id, email, first_name, last_name, created_at)| User {
                id,
                email,
                first_name,
                last_name,
                created_at,
            }),
        )
    }
}

#[tonic::async_trait]
impl UserService for Users {
    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<User>, Status> {
        let new = request.into_inner();
        validate(&new).map_err(Status::invalid_argument)?;
        sqlx::query(
            "INSERT INTO profiles (id, email, first_name, last_name, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&new.id)
        .bind(&new.email)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.db.pool)
        .await
        .map_err(db_status)?;
        // Whether this call inserted or an earlier one did, the stored profile is the answer.
        let stored = self.find(&new.id).await?;
        stored
            .map(Response::new)
            .ok_or_else(|| Status::internal("profile vanished after insert"))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let id = request.into_inner().id;
        match self.find(&id).await? {
            Some(user) => Ok(Response::new(user)),
            None => Err(Status::not_found("user not found")),
        }
    }
}

/// Bounds every field; NUL characters are refused because Postgres cannot store them in text.
fn validate(user: &CreateUserRequest) -> Result<(), &'static str> {
    let fields = [&user.id, &user.email, &user.first_name, &user.last_name];
    if fields.iter().any(|f| f.contains('\0')) {
        return Err("fields must not contain NUL characters");
    }
    if user.id.is_empty() || user.id.len() > 64 {
        return Err("id must be 1 to 64 characters");
    }
    if user.email.is_empty() || user.email.len() > 254 {
        return Err("email must be 1 to 254 characters");
    }
    let name_too_long = |name: &str| name.chars().count() > MAX_NAME_CHARS;
    if name_too_long(&user.first_name) || name_too_long(&user.last_name) {
        return Err("names must be at most 100 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::{platform::grpc, proto::user_service_client::UserServiceClient, testkit};

    fn profile(id: &str, first_name: &str) -> CreateUserRequest {
        CreateUserRequest {
            id: id.into(),
            email: format!("{id}@example.com"),
            first_name: first_name.into(),
            last_name: "Lovelace".into(),
        }
    }

    #[tokio::test]
    async fn create_is_idempotent_and_get_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let service = testkit::start("user", dir.path(), run).await;
        let mut client = UserServiceClient::new(grpc::channel(&service.url).unwrap());

        let created = client
            .create_user(profile("u-1", "Ada"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.first_name, "Ada");
        let retried = client
            .create_user(profile("u-1", "Changed"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            retried, created,
            "a repeated create returns the stored profile"
        );

        let fetched = client
            .get_user(GetUserRequest { id: "u-1".into() })
            .await
            .unwrap();
        assert_eq!(fetched.into_inner(), created);

        let missing = client
            .get_user(GetUserRequest { id: "u-2".into() })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);

        let long_name = "x".repeat(MAX_NAME_CHARS + 1);
        let invalid = client
            .create_user(profile("u-3", &long_name))
            .await
            .unwrap_err();
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let nul = client
            .create_user(profile("u-4", "A\0da"))
            .await
            .unwrap_err();
        assert_eq!(nul.code(), Code::InvalidArgument);
    }
}
