//! The rules a name in `/sayHello/{name}` must follow.

use axum::extract::{Path, rejection::PathRejection};

use hello_contract::MAX_NAME_BYTES;

use crate::error::AppError;

/// The name from the path: percent-encoded UTF-8 of at most
/// [`MAX_NAME_BYTES`] bytes once decoded.
pub(crate) fn valid_name(name: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let Path(name) = name.map_err(|_| AppError::InvalidName)?;
    if name.len() > MAX_NAME_BYTES {
        return Err(AppError::NameTooLong);
    }
    Ok(name)
}
