//! Query parameters and path segments as the API reads them: an empty parameter (`?month=&day=`,
//! as an HTML form sends the fields left blank) means the same as an absent one, and a malformed
//! one is refused in the API's error format (`invalid_query`), never in axum's plain text.

use crate::error::{ApiError, Code};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params<T>, ApiError> {
        parse(parts.uri.query().unwrap_or_default()).map(Params)
    }
}

/// A route's path segments (`/api/v1/jobs/{id}`), as axum's `Path` reads them.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(segments)) => Ok(Path(segments)),
            Err(rejection) => Err(ApiError::new(Code::InvalidQuery, rejection.body_text())),
        }
    }
}

/// A page's size as asked (`default` when not), refused outside 1-1000 as the searches' is.
pub fn page_size(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(default);
    let most = trail_core::query::MAX_PAGE;
    if !(1..=most).contains(&limit) {
        return Err(ApiError::new(Code::InvalidQuery, format!("limit must be 1-{most}, got {limit}")));
    }
    Ok(limit)
}

/// `query` without its empty parameters, deserialized.
fn parse<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let given = form_urlencoded::parse(query.as_bytes()).filter(|(_, value)| !value.is_empty());
    let kept = form_urlencoded::Serializer::new(String::new()).extend_pairs(given).finish();
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(kept.as_bytes()));
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| ApiError::new(Code::InvalidQuery, format!("Failed to deserialize query string: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trail_core::query::SearchParams;

    #[test]
    fn empty_parameters_are_absent_ones() {
        let blank: SearchParams = parse("user=&all_users=&month=&day=&tz=&limit=&cursor=&message=").unwrap();
        assert!(blank.month.is_none() && blank.day.is_none() && blank.limit.is_none() && blank.all_users.is_none());
        let given: SearchParams = parse("month=2026-06&day=&limit=5&message=a%26b").unwrap();
        assert_eq!(
            (given.month.as_deref(), given.limit, given.message.as_deref()),
            (Some("2026-06"), Some(5), Some("a&b"))
        );
        let refused = parse::<SearchParams>("limit=many").err().unwrap();
        assert_eq!(refused.code, Code::InvalidQuery);
        assert!(refused.message.contains("limit"), "the parameter is named: {}", refused.message);
    }
}
