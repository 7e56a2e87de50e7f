//! A bound on queued writes. Every request that may write (any method but GET, HEAD and OPTIONS)
//! reserves the size of its body, as `Content-Length` declares it or the body limit when it does
//! not say, from one budget, and gives it back once answered: reading, waiting for the writer and
//! committing included. When the budget is spent the request is refused at once with `503`
//! (`overloaded`) and `Retry-After`, before its body is read, so bodies waiting for the writer
//! never take more memory than the budget, however many clients send at once.

use crate::error::{ApiError, Code};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Bytes are reserved in units of a KiB, so a budget of up to 4 TiB fits the semaphore's counts.
const UNIT: usize = 1024;

#[derive(Clone)]
pub struct WriteBudget {
    units: Arc<Semaphore>,
    total_bytes: usize,
    body_limit: usize,
}

impl WriteBudget {
    pub fn new(total_bytes: usize, body_limit: usize) -> WriteBudget {
        let units = total_bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        WriteBudget { units: Arc::new(Semaphore::new(units)), total_bytes, body_limit }
    }

    /// The units a request reserves: its declared length, or the body limit when undeclared,
    /// never more than the whole budget (so one large request alone is always admitted).
    fn units_of(&self, request: &Request) -> u32 {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(self.body_limit);
        let bytes = declared.min(self.body_limit).min(self.total_bytes);
        u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX)
    }
}

pub async fn admit(State(budget): State<WriteBudget>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let Ok(_reserved) = budget.units.clone().try_acquire_many_owned(budget.units_of(&request)) else {
        metrics::counter!("trail_writes_refused_total").increment(1);
        return ApiError::new(
            Code::Overloaded,
            format!(
                "{} MiB of writes are queued already, the server's bound (`[limits] queued_writes_mib`); \
                 nothing was stored: send again after Retry-After seconds",
                budget.total_bytes / (1024 * 1024)
            ),
        )
        .into_response();
    };
    next.run(request).await
}
