//! A cutover delta's batch, and the undoing of one. The run holds each user's decision
//! (made when it was created from the newer export): `create` is pushed like any run's
//! user; `update` reads the user back and PATCHes only the attributes whose values
//! differ from what the mapping makes of the newer record; `deactivate` sets `active`
//! to false; `delete` deletes; `leave` is counted and nothing is sent. Whatever
//! changes a user in the target keeps how to undo it (the values it held before,
//! sealed), which the delta's rollback plays back: the former values PATCHed again,
//! `active` restored, a deleted user created again from what the target held.

use super::*;
use domain::runs::delta::{self as decided, Decision};
use serde_json::{Value, json};

/// The attributes of a SCIM user the target manages and an undo never sends back.
const SERVER_MANAGED: [&str; 3] = ["id", "meta", "schemas"];

/// The PATCH operations that turn `kept` (what the target holds) into `wanted` (what
/// the mapping makes of the newer record), attribute by attribute, and those that
/// turn it back. Extension schemas are compared attribute by attribute inside them.
pub(super) fn operations(wanted: &Value, kept: &Value) -> (Vec<Value>, Vec<Value>) {
    let (mut forward, mut back) = (Vec::new(), Vec::new());
    let Some(fields) = wanted.as_object() else {
        return (forward, back);
    };
    let mut compare = |path: String, value: &Value, before: Option<&Value>| {
        let probe = json!({ "x": value });
        let held = json!({ "x": before.cloned().unwrap_or(Value::Null) });
        if domain::runs::diff(&probe, &held).is_empty() {
            return;
        }
        forward.push(json!({"op": "replace", "path": path, "value": value}));
        back.push(match before {
            Some(before) if !before.is_null() => {
                json!({"op": "replace", "path": path, "value": before})
            }
            _ => json!({"op": "remove", "path": path}),
        });
    };
    for (key, value) in fields {
        if SERVER_MANAGED.contains(&key.as_str()) || key == "password" {
            continue;
        }
        match (key.starts_with("urn:"), value.as_object()) {
            (true, Some(inner)) => {
                for (attribute, value) in inner {
                    let before = kept.get(key).and_then(|k| k.get(attribute));
                    compare(format!("{key}:{attribute}"), value, before);
                }
            }
            _ => compare(key.clone(), value, kept.get(key)),
        }
    }
    (forward, back)
}

/// What the target held, as a user to create again: without what the server manages.
fn recreatable(kept: &Value) -> Value {
    let mut user = kept.clone();
    if let Some(fields) = user.as_object_mut() {
        fields.remove("id");
        fields.remove("meta");
    }
    user
}

fn undo_context(run: RunId, source_id: &str) -> String {
    format!("undo:{run}:{source_id}")
}

impl Inner {
    /// A delta run's batch: each decision carried out, the undo of each change kept
    /// before the batch settles.
    pub(super) async fn delta(
        &self,
        context: &Arc<Context>,
        owner: &str,
        claimed: &[Claimed],
        stop: &CancellationToken,
    ) -> Batch {
        let run = &context.run;
        let seqs: Vec<u64> = claimed.iter().map(|c| c.seq).collect();
        let decisions: HashMap<u64, Decision> = match self.store.delta_records(run.id, &seqs).await
        {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|(seq, decision, _)| Some((seq, Decision::parse(&decision)?)))
                .collect(),
            Err(err) => {
                tracing::warn!(run = %run.id, error = %err, "the batch's decisions could not be read; it waits");
                return Batch::default();
            }
        };
        let decision = |c: &Claimed| decisions.get(&c.seq).copied().unwrap_or(Decision::Leave);
        let creates: Vec<Claimed> = claimed
            .iter()
            .filter(|c| decision(c) == Decision::Create)
            .cloned()
            .collect();
        let mut batch = if creates.is_empty() {
            Batch::default()
        } else {
            match self.prepare(context, &creates).await {
                Ok(prepared) => self.push(context, owner, prepared, stop).await,
                Err(err) => {
                    tracing::warn!(run = %run.id, error = %err, "the batch's new users could not be mapped; it waits");
                    return Batch::default();
                }
            }
        };
        if batch.pause.is_some() {
            return batch;
        }
        let others: Vec<Claimed> = claimed
            .iter()
            .filter(|c| decision(c) != Decision::Create)
            .cloned()
            .collect();
        let mut undo = Vec::new();
        let (settled, pause) = self.change(context, &others, &decision, &mut undo).await;
        if !undo.is_empty()
            && let Err(err) = self.store.keep_undo(run.id, &undo).await
        {
            // Nothing of this part settles: the records are claimed again, read back
            // and decided again (a change already made then reads as unchanged).
            tracing::warn!(run = %run.id, error = %err, "the undo of the batch's changes could not be kept; its changes wait");
            batch.settled.sort_unstable_by_key(|s| s.seq);
            return batch;
        }
        batch.settled.extend(settled);
        batch.settled.sort_unstable_by_key(|s| s.seq);
        batch.pause = pause;
        batch
    }

    /// Updates, deactivates, deletes or leaves each of `claimed`, keeping in `undo`
    /// how to undo what it changed.
    async fn change(
        &self,
        context: &Arc<Context>,
        claimed: &[Claimed],
        decision: &(dyn Fn(&Claimed) -> Decision + Sync),
        undo: &mut Vec<(u64, Vec<u8>)>,
    ) -> (Vec<Settled>, Option<PauseReason>) {
        let run = &context.run;
        let mut out = Vec::with_capacity(claimed.len());
        let (leave, act): (Vec<&Claimed>, Vec<&Claimed>) =
            claimed.iter().partition(|c| decision(c) == Decision::Leave);
        for c in leave {
            out.push(Settled {
                scim_id: c.scim_id.clone(),
                ..settled(
                    c.seq,
                    RecordState::Skipped,
                    decided::LEFT,
                    "gone from the newer export; the policy leaves such users as they are",
                )
            });
        }
        if act.is_empty() {
            return (out, None);
        }
        // What the mapping makes of each newer record (updates), then what the target
        // holds for each user.
        let ids: Vec<String> = act.iter().map(|c| c.source_id.clone()).collect();
        let Some(sealed) = self.sealed_of(run, &ids).await else {
            return (out, None);
        };
        let mut wanted: HashMap<u64, Value> = HashMap::new();
        for c in &act {
            if decision(c) != Decision::Update {
                continue;
            }
            match super::workers::open_claimed(&context.vault, context, c, sealed.get(&c.source_id))
            {
                Ok(user) => {
                    let mapped = context.mapping.map(&user);
                    if mapped.failures.is_empty() {
                        wanted.insert(c.seq, mapped.resource);
                    } else {
                        out.push(Settled {
                            scim_id: c.scim_id.clone(),
                            ..super::workers::mapping_failed(c.seq, &mapped.failures)
                        });
                    }
                }
                Err(failed) => out.push(Settled {
                    scim_id: c.scim_id.clone(),
                    ..*failed
                }),
            }
        }
        let mut pause = None;
        for c in act {
            if out.iter().any(|s| s.seq == c.seq) {
                continue;
            }
            let Some(scim_id) = c.scim_id.clone() else {
                out.push(settled(
                    c.seq,
                    RecordState::Failed,
                    ErrorClass::Protocol.as_str(),
                    "no run recorded a SCIM id for this user",
                ));
                continue;
            };
            let path = format!("/Users/{scim_id}");
            let kept = match context.client.get(&path).await {
                Ok(kept) => kept,
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    pause = Some(PauseReason::Unauthorized {
                        status: call.failure.status.unwrap_or(401),
                    });
                    break;
                }
                Err(call) if call.class() == ErrorClass::NotFound => {
                    out.push(Settled {
                        scim_id: Some(scim_id),
                        ..settled(
                            c.seq,
                            RecordState::Failed,
                            domain::runs::reconcile::MISSING,
                            "the target no longer has this user (deleted there, or by another tool)",
                        )
                    });
                    continue;
                }
                Err(call) => {
                    out.push(Settled {
                        scim_id: Some(scim_id),
                        scim_type: call.failure.scim_type.clone(),
                        ..settled(
                            c.seq,
                            RecordState::Failed,
                            call.class().as_str(),
                            call.failure.detail,
                        )
                    });
                    continue;
                }
            };
            let (forward, back, state, class, detail) = match decision(c) {
                Decision::Update => {
                    let (forward, back) = operations(&wanted[&c.seq], &kept);
                    let names: Vec<String> = forward
                        .iter()
                        .filter_map(|op| op["path"].as_str().map(str::to_string))
                        .collect();
                    let detail = format!("changed: {}", names.join(", "));
                    (
                        forward,
                        json!({"patch": back}),
                        RecordState::Updated,
                        decided::CHANGED,
                        detail,
                    )
                }
                Decision::Deactivate => (
                    vec![json!({"op": "replace", "path": "active", "value": false})],
                    json!({"patch": [match kept.get("active") {
                        Some(active) => json!({"op": "replace", "path": "active", "value": active}),
                        None => json!({"op": "replace", "path": "active", "value": true}),
                    }]}),
                    RecordState::Updated,
                    decided::DEACTIVATED,
                    "gone from the newer export: deactivated".to_string(),
                ),
                Decision::Delete => (
                    Vec::new(),
                    json!({"create": recreatable(&kept)}),
                    RecordState::Deleted,
                    decided::DELETED,
                    "gone from the newer export: deleted".to_string(),
                ),
                Decision::Create | Decision::Leave => continue,
            };
            if decision(c) == Decision::Update && forward.is_empty() {
                out.push(Settled {
                    scim_id: Some(scim_id),
                    ..settled(
                        c.seq,
                        RecordState::Skipped,
                        decided::UNCHANGED,
                        "the target already holds what the mapping makes of the newer record",
                    )
                });
                continue;
            }
            // How to undo it is kept before the change is made.
            let sealed_undo = context.vault.seal(
                back.to_string().as_bytes(),
                undo_context(run.id, &c.source_id).as_bytes(),
            );
            let result = if decision(c) == Decision::Delete {
                context.client.delete(&path).await
            } else {
                context.client.patch(&path, forward).await
            };
            match result {
                Ok(()) => {
                    undo.push((c.seq, sealed_undo));
                    out.push(changed(c.seq, state, Some(scim_id), Some(class), detail));
                }
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    pause = Some(PauseReason::Unauthorized {
                        status: call.failure.status.unwrap_or(401),
                    });
                    break;
                }
                Err(call) => out.push(Settled {
                    scim_id: Some(scim_id),
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
        (out, pause)
    }

    /// A rollback's users that a delta run changed rather than created: their former
    /// values PATCHed back, or (deleted) created again. Returns the outcomes of those
    /// it handled; the rest are the created ones, deleted as usual.
    pub(super) async fn undo_changes(
        &self,
        context: &Context,
        claimed: &[Claimed],
    ) -> domain::Result<(Vec<Settled>, Option<PauseReason>)> {
        let run = &context.run;
        let Some(parent) = run.parent else {
            return Ok((Vec::new(), None));
        };
        let seqs: Vec<u64> = claimed.iter().map(|c| c.seq).collect();
        let undo: HashMap<u64, (String, Option<Vec<u8>>)> = self
            .store
            .delta_records(run.id, &seqs)
            .await?
            .into_iter()
            .map(|(seq, decision, undo)| (seq, (decision, undo)))
            .collect();
        let mut out = Vec::new();
        for c in claimed {
            let Some((_, Some(sealed))) = undo.get(&c.seq) else {
                continue;
            };
            let plan: Value = match context
                .vault
                .open(sealed, undo_context(parent, &c.source_id).as_bytes())
                .ok()
                .and_then(|plain| serde_json::from_slice(&plain).ok())
            {
                Some(plan) => plan,
                None => {
                    out.push(Settled {
                        scim_id: c.scim_id.clone(),
                        ..settled(
                            c.seq,
                            RecordState::Failed,
                            ErrorClass::Protocol.as_str(),
                            "how to undo this change cannot be read",
                        )
                    });
                    continue;
                }
            };
            let result = match (plan.get("patch"), plan.get("create"), &c.scim_id) {
                (Some(Value::Array(ops)), _, Some(scim_id)) => context
                    .client
                    .patch(&format!("/Users/{scim_id}"), ops.clone())
                    .await
                    .map(|()| {
                        changed(
                            c.seq,
                            RecordState::Updated,
                            Some(scim_id.clone()),
                            Some(decided::RESTORED),
                            "the values held before the delta put back",
                        )
                    }),
                (_, Some(user), _) => context.client.create("/Users", user).await.map(|created| {
                    changed(
                        c.seq,
                        RecordState::Created,
                        created
                            .get("id")
                            .and_then(|v| v.as_str())
                            .map(str::to_string),
                        Some(decided::RESTORED),
                        "created again as the target held it before the delta",
                    )
                }),
                _ => continue,
            };
            match result {
                Ok(done) => out.push(done),
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    return Ok((
                        out,
                        Some(PauseReason::Unauthorized {
                            status: call.failure.status.unwrap_or(401),
                        }),
                    ));
                }
                Err(call) => out.push(Settled {
                    scim_id: c.scim_id.clone(),
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
        Ok((out, None))
    }
}

#[cfg(test)]
mod tests {
    use super::operations;
    use serde_json::json;

    #[test]
    fn only_what_differs_is_patched_and_its_former_value_kept() {
        let wanted = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann@corp.example",
            "name": {"givenName": "Renamed", "familyName": "Lee"},
            "title": "Ops",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng", "division": "X"},
        });
        let kept = json!({
            "id": "abc",
            "meta": {"created": "2026-01-01T00:00:00Z"},
            "userName": "ann@corp.example",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng"},
        });
        let (forward, back) = operations(&wanted, &kept);
        let paths: Vec<&str> = forward
            .iter()
            .map(|o| o["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "name",
                "title",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division"
            ]
        );
        assert_eq!(
            back[0],
            json!({"op": "replace", "path": "name", "value": {"givenName": "Ann", "familyName": "Lee"}})
        );
        assert_eq!(back[1], json!({"op": "remove", "path": "title"}));
        // Nothing differs: nothing to send.
        assert!(operations(&kept, &kept).0.is_empty());
    }
}
