//! A JSON body whatever its Content-Type (as `/api/v1/events` takes it: `curl -d` sends a form
//! type), with the API's error codes: `malformed_json` when it is not JSON, `invalid_body` when
//! it has the wrong shape, `payload_too_large` over the limit. The login form's body likewise;
//! and counts that take integral floats, as JSON Schema's integers do.

use crate::error::{ApiError, Code};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::Deserialize;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let bytes = Bytes::from_request(request, state).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|error| {
            let code = if error.is_data() { Code::InvalidBody } else { Code::MalformedJson };
            ApiError::new(code, format!("{error}; nothing was stored"))
        })
    }
}

/// A form body (`application/x-www-form-urlencoded`, as the login page posts it) whatever its
/// Content-Type, refused in the API's error format (`invalid_body`) when fields are missing.
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<FormBody<T>, ApiError> {
        let bytes = Bytes::from_request(request, state).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormBody)
            .map_err(|error| ApiError::new(Code::InvalidBody, format!("the form is incomplete: {error}")))
    }
}

/// A count in a JSON body that also takes an integral float (`7.0`), as JSON Schema's `integer`
/// does: generated clients send them.
pub fn count<'de, D: serde::Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(whole), _) => Some(whole),
        (None, Some(float)) if float.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&float) => Some(float as u64),
        _ => None,
    };
    whole
        .and_then(|whole| T::try_from(whole).ok())
        .ok_or_else(|| D::Error::custom(format!("{number} is not a count this field takes")))
}

/// [`count`], for a field that may be left out.
pub fn optional_count<'de, D: serde::Deserializer<'de>, T: TryFrom<u64>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Count<T: TryFrom<u64>>(#[serde(deserialize_with = "count")] T);
    Ok(Option::<Count<T>>::deserialize(deserializer)?.map(|Count(value)| value))
}
