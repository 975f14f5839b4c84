//! A rollback's batch: the users a run created, deleted by their SCIM ids; of a delta
//! run, also its changes undone (see `delta.rs`).

use super::*;

impl Inner {
    /// A rollback's batch: each user deleted by its SCIM id (one already gone counts
    /// as deleted); 401/403 stops it.
    pub(super) async fn delete(&self, context: &Context, claimed: &[Claimed]) -> Batch {
        let (mut out, pause) = match self.undo_changes(context, claimed).await {
            Ok(undone) => undone,
            Err(err) => {
                tracing::warn!(run = %context.run.id, error = %err, "what the batch undoes could not be read; it waits");
                return Batch::default();
            }
        };
        if pause.is_some() {
            out.sort_unstable_by_key(|s| s.seq);
            return Batch {
                settled: out,
                pause,
                ..Batch::default()
            };
        }
        let undone: std::collections::HashSet<u64> = out.iter().map(|s| s.seq).collect();
        for c in claimed.iter().filter(|c| !undone.contains(&c.seq)) {
            let Some(scim_id) = &c.scim_id else {
                out.push(settled(
                    c.seq,
                    RecordState::Failed,
                    ErrorClass::Protocol.as_str(),
                    "the run recorded no SCIM id for this user",
                ));
                continue;
            };
            let path = format!("/Users/{scim_id}");
            let result = context.client.delete(&path).await;
            let done = match result {
                Ok(()) => Settled {
                    seq: c.seq,
                    state: RecordState::Deleted,
                    scim_id: Some(scim_id.clone()),
                    error_class: None,
                    error_detail: None,
                    scim_type: None,
                    groups: None,
                    moved: None,
                },
                Err(call) if call.class() == ErrorClass::NotFound => Settled {
                    seq: c.seq,
                    state: RecordState::Deleted,
                    scim_id: Some(scim_id.clone()),
                    error_class: None,
                    error_detail: Some("the user was gone already".into()),
                    scim_type: None,
                    groups: None,
                    moved: None,
                },
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    out.sort_unstable_by_key(|s| s.seq);
                    return Batch {
                        settled: out,
                        pause: Some(PauseReason::Unauthorized {
                            status: call.failure.status.unwrap_or(401),
                        }),
                        ..Batch::default()
                    };
                }
                Err(call) => Settled {
                    scim_id: Some(scim_id.clone()),
                    ..settled(
                        c.seq,
                        RecordState::Failed,
                        call.class().as_str(),
                        call.failure.detail,
                    )
                },
            };
            out.push(done);
        }
        out.sort_unstable_by_key(|s| s.seq);
        Batch {
            settled: out,
            ..Batch::default()
        }
    }
}
