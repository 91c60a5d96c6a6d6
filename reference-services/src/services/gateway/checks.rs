//! Input checks shared by several routes: a malformed request is a 400 at the edge, never a 500.

use super::*;

/// Whether `text` has a character that is not whitespace by the broader of Rust's and Python's
/// definitions (Python's also has U+001C..U+001F), so this check agrees with the `\S` patterns
/// of `openapi.yaml` whichever validator reads them.
pub(super) fn has_visible_char(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !('\u{1c}'..='\u{1f}').contains(&c))
}

pub(super) fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be {min} to {max} characters"
        )));
    }
    Ok(())
}

/// Text stored by a backend: bounded, and free of NUL (which Postgres cannot store).
pub(super) fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    check_len(field, value, min, max)?;
    if value.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

pub(super) fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    if value < min || value > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be within {min}..={max}"
        )));
    }
    Ok(value)
}

pub(super) fn check_product_id(id: i64) -> Result<i64, ApiError> {
    check_range("product_id", id, 1, i64::MAX)
}

pub(super) fn check_quantity(quantity: i64) -> Result<i64, ApiError> {
    check_range("quantity", quantity, 1, cart::MAX_QUANTITY)
}

/// An order or payment id from the path. One that cannot exist is simply not found, so the
/// answer reveals nothing about the id format.
pub(super) fn check_resource_id(kind: &str, id: &str) -> Result<(), ApiError> {
    let plausible = (1..=MAX_RESOURCE_ID_CHARS).contains(&id.chars().count())
        && !id.chars().any(char::is_control);
    if plausible {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("{kind} not found")))
    }
}
