//! `trail migrate`: a trail's state beside its events, written whole in one transaction. It
//! replaces what the database held, so that a migration run again converges.

use crate::{accounts, backend, checkpoints, contents, pg};
use trail_core::EventId;
use trail_core::identity::AccountWrite;
use trail_core::time;
use trail_store::StoreError;
use trail_store::state::TrailState;

pub async fn replace(client: &mut deadpool_postgres::Object, state: &TrailState) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.batch_execute(
        "DELETE FROM job_logs; DELETE FROM job_targets; DELETE FROM jobs; DELETE FROM sessions; \
         DELETE FROM api_tokens; DELETE FROM accounts; DELETE FROM device_contents; DELETE FROM contents; \
         DELETE FROM forward_cursors; DELETE FROM checkpoints;",
    )
    .await
    .map_err(pg)?;
    for account in &state.accounts {
        accounts::apply(&tx, &AccountWrite::Create(account.clone())).await?;
    }
    for (token, digest) in &state.tokens {
        let scopes: Vec<&str> = token.scopes.iter().map(|s| s.name()).collect();
        tx.execute(
            "INSERT INTO api_tokens (id, owner, name, scopes, digest, created_at, last_used_at, revoked_at) \
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &token.id,
                &token.owner.as_str(),
                &token.name,
                &serde_json::to_string(&scopes).map_err(backend)?,
                &&digest[..],
                &time::to_micros(token.created_at),
                &token.last_used_at.map(time::to_micros),
                &token.revoked_at.map(time::to_micros),
            ],
        )
        .await
        .map_err(pg)?;
    }
    for session in &state.sessions {
        accounts::apply(&tx, &AccountWrite::CreateSession(session.clone())).await?;
    }
    for device in &state.contents {
        let stored = &device.content;
        let changed_at = time::to_micros(stored.changed_at);
        contents::replace(&tx, &device.device, device.kind, &stored.hash, &stored.content, changed_at).await?;
        contents::touch(&tx, &device.device, device.kind, time::to_micros(stored.seen_at)).await?;
    }
    for record in &state.jobs {
        let job = &record.job;
        tx.execute(
            "INSERT INTO jobs (id, name, submitter, submitted_at, request_id, session_id, client, submit_event_id, \
             completed_event_id) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &job.id.get(),
                &job.name,
                &job.submitter,
                &time::to_micros(job.submitted_at),
                &job.request_id,
                &job.session_id,
                &record.client,
                &job.submit_event_id.get(),
                &job.completed_event_id.map(EventId::get),
            ],
        )
        .await
        .map_err(pg)?;
        for (position, leaf) in job.leaves.iter().enumerate() {
            tx.execute(
                "INSERT INTO job_targets (job_id, position, target, status, message, updated_at, event_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &job.id.get(),
                    &(position as i32),
                    &leaf.target,
                    &leaf.status.name(),
                    &leaf.message,
                    &time::to_micros(leaf.updated_at),
                    &leaf.event_id.map(EventId::get),
                ],
            )
            .await
            .map_err(pg)?;
        }
    }
    for (destination, through) in &state.cursors {
        tx.execute(
            "INSERT INTO forward_cursors VALUES ($1, $2, $3)",
            &[destination, &through.get(), &time::to_micros(jiff::Timestamp::now())],
        )
        .await
        .map_err(pg)?;
    }
    for checkpoint in &state.checkpoints {
        checkpoints::insert(&tx, checkpoint).await?;
    }
    // New tokens and jobs are numbered after the migrated ones.
    tx.batch_execute(
        "SELECT setval(pg_get_serial_sequence('api_tokens', 'id'), coalesce(max(id), 0) + 1, false) FROM api_tokens; \
         SELECT setval(pg_get_serial_sequence('jobs', 'id'), coalesce(max(id), 0) + 1, false) FROM jobs;",
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}
