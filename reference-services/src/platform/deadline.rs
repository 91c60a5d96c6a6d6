//! The time budget of a request, carried to every backend call it makes: whoever serves the
//! request sets a deadline in a task-local ([`scope`]), and the gRPC interceptor sends the time
//! left as the call's `grpc-timeout` ([`apply`]), so a backend stops working on a call whose
//! caller has already given up, and the caller's own channel gives up at the same moment.
//!
//! A client may ask for a shorter budget than the server's own: [`client_budget`] reads
//! `X-Request-Timeout` (milliseconds) and `grpc-timeout` (the gRPC wire format, e.g. `250m`).

use std::{
    future::Future,
    time::{Duration, Instant},
};

use axum::http::HeaderMap;

/// The header in which a client states its own time budget, in milliseconds.
pub const REQUEST_TIMEOUT_HEADER: &str = "x-request-timeout";
/// The gRPC deadline header (`<up to 8 digits><unit>`, unit one of `H M S m u n`).
pub const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the deadline of every backend call it makes (in its task).
pub async fn scope<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// Time left before the current request's deadline; `None` outside a [`scope`].
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// Sets the time left as the call's deadline (`grpc-timeout`); a call made after the deadline
/// fails at once with `DEADLINE_EXCEEDED` instead of reaching the backend.
pub fn apply<T>(request: &mut tonic::Request<T>) -> Result<(), tonic::Status> {
    match remaining() {
        None => Ok(()),
        Some(left) if left.is_zero() => Err(tonic::Status::deadline_exceeded(
            "the request's time budget ran out before this backend call",
        )),
        Some(left) => {
            request.set_timeout(left);
            Ok(())
        }
    }
}

/// The smallest budget the client asked for in [`REQUEST_TIMEOUT_HEADER`] or
/// [`GRPC_TIMEOUT_HEADER`]; malformed or zero values are ignored (the server's budget applies).
pub fn client_budget(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let millis = text(REQUEST_TIMEOUT_HEADER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    let grpc = text(GRPC_TIMEOUT_HEADER).and_then(parse_grpc_timeout);
    [millis, grpc]
        .into_iter()
        .flatten()
        .filter(|budget| !budget.is_zero())
        .min()
}

/// Parses a `grpc-timeout` value: 1 to 8 digits and a unit (`H`ours, `M`inutes, `S`econds,
/// `m`illiseconds, `u`microseconds, `n`anoseconds).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "12", "123456789m", "-1S", "1.5S", "10x", "१S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_client_budget_is_the_smaller_of_its_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_budget(&headers), None);
        headers.insert(REQUEST_TIMEOUT_HEADER, "1500".parse().unwrap());
        assert_eq!(client_budget(&headers), Some(Duration::from_millis(1500)));
        headers.insert(GRPC_TIMEOUT_HEADER, "300m".parse().unwrap());
        assert_eq!(client_budget(&headers), Some(Duration::from_millis(300)));
        headers.insert(GRPC_TIMEOUT_HEADER, "soon".parse().unwrap());
        assert_eq!(client_budget(&headers), Some(Duration::from_millis(1500)));
        headers.insert(REQUEST_TIMEOUT_HEADER, "0".parse().unwrap());
        assert_eq!(client_budget(&headers), None, "a zero budget is ignored");
    }

    #[tokio::test]
    async fn a_call_carries_the_time_left_and_fails_once_it_is_gone() {
        let mut outside = tonic::Request::new(());
        apply(&mut outside).unwrap();
        assert!(outside.metadata().get(GRPC_TIMEOUT_HEADER).is_none());

        let budget = Duration::from_secs(30);
        let sent = scope(Instant::now() + budget, async {
            let mut request = tonic::Request::new(());
            apply(&mut request).unwrap();
            request.metadata().get(GRPC_TIMEOUT_HEADER).cloned()
        })
        .await
        .expect("a grpc-timeout inside a scope");
        let sent = parse_grpc_timeout(sent.to_str().unwrap()).unwrap();
        assert!(sent <= budget && !sent.is_zero(), "{sent:?}");

        let late = scope(Instant::now() - Duration::from_millis(1), async {
            apply(&mut tonic::Request::new(()))
        })
        .await;
        assert_eq!(late.unwrap_err().code(), tonic::Code::DeadlineExceeded);
    }
}
