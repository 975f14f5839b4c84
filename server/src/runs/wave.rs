//! An invitation wave's batch: each user the production runs created is asked for a
//! new password by the target's own attribute (`forcePasswordReset`, or `askPassword`)
//! and marked migrated (`is_migrated`) in the same request, so that an old password
//! can never be verified over the new one; users whose password moved at a login in
//! the meantime are left alone.

use super::*;

impl Inner {
    pub(super) async fn invite(&self, context: &Context, claimed: &[Claimed]) -> Batch {
        let run = &context.run;
        let Some((flag, migrated)) = &context.reset else {
            let settled = claimed
                .iter()
                .map(|c| {
                    settled(
                        c.seq,
                        RecordState::Failed,
                        classes::NO_RESET_ATTRIBUTE,
                        "the target defines neither forcePasswordReset nor askPassword: test the \
                         target again once it does",
                    )
                })
                .collect();
            return Batch {
                settled,
                ..Batch::default()
            };
        };
        let ids: Vec<String> = claimed.iter().filter_map(|c| c.scim_id.clone()).collect();
        let moved = match self.store.moved_among(run.project_id, &ids).await {
            Ok(moved) => moved,
            // Nothing sent: the records are claimed again once their lease lapses.
            Err(err) => {
                tracing::warn!(run = %run.id, error = %err, "cannot tell which users moved; the batch waits");
                return Batch::default();
            }
        };
        let mut out = Vec::with_capacity(claimed.len());
        let mut reset = Vec::new();
        let mut pause = None;
        for c in claimed {
            let Some(scim_id) = &c.scim_id else {
                out.push(settled(
                    c.seq,
                    RecordState::Failed,
                    ErrorClass::Protocol.as_str(),
                    "the wave recorded no SCIM id for this user",
                ));
                continue;
            };
            if moved.contains(scim_id) {
                out.push(Settled {
                    scim_id: Some(scim_id.clone()),
                    ..settled(
                        c.seq,
                        RecordState::Skipped,
                        classes::ALREADY_MOVED,
                        "the password moved at a login before the wave",
                    )
                });
                continue;
            }
            let mut operations =
                vec![serde_json::json!({"op": "replace", "path": flag, "value": true})];
            if let Some((path, kind)) = migrated {
                let value = if kind.eq_ignore_ascii_case("boolean") {
                    serde_json::Value::Bool(true)
                } else {
                    serde_json::Value::String("true".into())
                };
                operations.push(serde_json::json!({"op": "replace", "path": path, "value": value}));
            }
            match context
                .client
                .patch(&format!("/Users/{scim_id}"), operations)
                .await
            {
                Ok(()) => {
                    reset.push(c.seq);
                    out.push(changed(
                        c.seq,
                        RecordState::Updated,
                        Some(scim_id.clone()),
                        None,
                        match migrated {
                            Some((path, _)) => format!("{flag} and {path} set"),
                            None => format!("{flag} set"),
                        },
                    ));
                }
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    pause = Some(PauseReason::Unauthorized {
                        status: call.failure.status.unwrap_or(401),
                    });
                    break;
                }
                Err(call) if call.class() == ErrorClass::NotFound => out.push(Settled {
                    scim_id: Some(scim_id.clone()),
                    ..settled(
                        c.seq,
                        RecordState::Failed,
                        ErrorClass::NotFound.as_str(),
                        "the user is no longer in the target",
                    )
                }),
                Err(call) => out.push(Settled {
                    scim_id: Some(scim_id.clone()),
                    scim_type: call.failure.scim_type.clone(),
                    ..settled(
                        c.seq,
                        RecordState::Failed,
                        call.class().as_str(),
                        call.failure.detail,
                    )
                }),
            }
        }
        // Marked as the target changed them: the coverage rises with the wave, and a
        // user reset here is never verified again.
        if let Err(err) = self.store.mark_wave_moved(run.id, &reset, Utc::now()).await {
            tracing::error!(run = %run.id, error = %err, users = reset.len(), "users reset by the wave could not be marked moved");
        }
        Batch {
            settled: out,
            pause,
            ..Batch::default()
        }
    }
}
