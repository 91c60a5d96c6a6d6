//! The events route: page views forwarded to analytics ingest.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct EventBody {
    #[serde(rename = "type")]
    event_type: String,
    url: String,
    product_id: Option<i64>,
    session_id: Option<String>,
}

pub(super) async fn track_event(
    State(gw): State<Gateway>,
    OptionalCaller(caller): OptionalCaller,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.event_type != "page.viewed" {
        return Err(ApiError::bad_request("type must be \"page.viewed\""));
    }
    check_len("url", &body.url, 1, 2048)?;
    if !has_visible_char(&body.url) {
        return Err(ApiError::bad_request("url must not be blank"));
    }
    if let Some(id) = body.product_id {
        check_product_id(id)?;
    }
    if let Some(session) = &body.session_id {
        check_len("session_id", session, 0, MAX_SESSION_ID_CHARS)?;
    }
    let event = json!({
        "type": body.event_type,
        "url": body.url,
        "product_id": body.product_id,
        "session_id": body.session_id,
        "user_id": caller.map(|c| c.user_id),
    });
    let request = gw
        .http
        .post(format!("{}/v1/events", gw.ingest_url))
        .json(&event);
    let accepted: Value = call_json(request, "analytics-ingest").await?;
    let event_id = accepted["event_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((StatusCode::ACCEPTED, Json(json!({"event_id": event_id}))))
}
