//! The end of a run: groups and memberships follow the users, a test run's users are
//! read back and compared, and the run finishes.

use super::*;

/// Retries of retries followed back to the run whose groups they filled.
const MAX_RETRY_CHAIN: usize = 50;
/// Group members asked after in one filter.
const MEMBERS_PER_LOOKUP: usize = 50;

impl Inner {
    /// Every record settled: groups and memberships follow the users, a test run's
    /// users are read back, and the run finishes. One instance does it, under a lease
    /// of its own; a repeat after a crash finds the groups and adds nothing twice.
    pub(super) async fn finish(
        &self,
        context: &Context,
        run: Run,
        drive: &Drive,
    ) -> domain::Result<()> {
        let owner = format!("{}:finish", self.instance);
        let lease = chrono::Duration::from_std(self.config.lease * 10)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        let now = Utc::now();
        if !self
            .store
            .claim_finish(run.id, &owner, now, now + lease)
            .await?
        {
            return Ok(());
        }
        let groups = match run.kind {
            RunKind::Rollback => match run.parent {
                Some(parent) => Some(self.delete_groups(context, parent).await?),
                None => None,
            },
            _ if context.settings.tuning.groups => Some(self.groups(context).await?),
            _ => None,
        };
        // A test run's read-back, or a reconciliation's extra users, kept sealed: they
        // name users.
        let found = match run.kind {
            RunKind::TestRun => Some(serde_json::to_vec(&self.read_back(context).await?)),
            RunKind::Reconcile => {
                let groups = self.group_check(context).await?;
                let mut extra = self.extra_users(context).await?;
                extra.groups = groups;
                Some(serde_json::to_vec(&extra))
            }
            _ => None,
        };
        let readback = match found {
            Some(json) => {
                let json = json.map_err(|e| DomainError::Internal(e.to_string()))?;
                Some(
                    context
                        .vault
                        .seal(&json, readback_context(run.id).as_bytes()),
                )
            }
            None => None,
        };
        let summary = serde_json::to_string(&groups.unwrap_or_default())
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        self.store
            .save_finish(run.id, &summary, readback.as_deref())
            .await?;
        self.fold_outcomes(context).await?;
        let run = self.run(run.id).await?;
        if run.state == RunState::Running {
            let event = RunEvent::Finish {
                failed: run.counts.failed,
            };
            match advance(self.store.as_ref(), &run, &event, None, Utc::now()).await {
                Ok(done) => {
                    tracing::info!(run = %run.id, state = done.state.as_str(), "the run finished");
                    self.publish(&done, drive);
                }
                Err(DomainError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// What a run that ended leaves for review: its outcomes folded into the queue (a
    /// rollback's and an invitation wave's are not failures of users), and against
    /// production, the count of users in the target refreshed.
    pub(super) async fn fold_outcomes(&self, context: &Context) -> domain::Result<()> {
        let run = &context.run;
        // A wave changes users already migrated: its failures are the target's, not
        // the users', and stay on the wave's page.
        if run.kind == RunKind::InviteWave {
            return Ok(());
        }
        if run.kind != RunKind::Rollback {
            self.queue_outcomes(context).await?;
        }
        if run.target_role == TargetRole::Production.as_str() {
            self.store
                .refresh_migrated(run.project_id, Utc::now())
                .await?;
        }
        Ok(())
    }

    /// Folds the run's outcomes into the review queue: its failed users (with their
    /// user type and the digests they are found by) and the queued users it migrated.
    /// A repeat after a crash changes nothing.
    async fn queue_outcomes(&self, context: &Context) -> domain::Result<()> {
        let run = &context.run;
        let mut after = None;
        loop {
            let page = self
                .store
                .run_records(run.id, &RecordFilter::default(), after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            let failed_ids: Vec<String> = page
                .iter()
                .filter(|r| r.state == RecordState::Failed)
                .map(|r| r.source_id.clone())
                .collect();
            let sealed: HashMap<String, Vec<u8>> = self
                .store
                .sealed_records(run.project_id, &failed_ids)
                .await?
                .into_iter()
                .collect();
            let mut failed = Vec::new();
            let mut succeeded = Vec::new();
            for record in &page {
                let at = record.settled_at.unwrap_or_else(Utc::now);
                match record.state {
                    RecordState::Failed => {
                        let user = sealed.get(&record.source_id).and_then(|data| {
                            records::open(&context.vault, run.project_id, &record.source_id, data)
                                .ok()
                        });
                        let user_type = user
                            .as_ref()
                            .and_then(|u| context.user_types.place(u))
                            .and_then(|s| context.settings.user_types.user_types.get(s))
                            .map(|s| s.name.clone());
                        let keys = match &user {
                            Some(user) => domain::review::search_keys(user),
                            None => domain::review::search_keys(&domain::import::NormalizedUser {
                                source_id: record.source_id.clone(),
                                ..Default::default()
                            }),
                        };
                        failed.push(domain::review::QueuedFailure {
                            source_id: record.source_id.clone(),
                            at,
                            error_class: record.error_class.clone().unwrap_or_default(),
                            scim_type: record.scim_type.clone(),
                            detail: record.error_detail.clone().unwrap_or_default(),
                            user_type,
                            digests: keys
                                .iter()
                                .map(|k| {
                                    records::search_digest(self.keys.master(), run.project_id, k)
                                })
                                .collect(),
                        });
                    }
                    RecordState::Created | RecordState::Updated | RecordState::Skipped
                        if record.scim_id.is_some() =>
                    {
                        succeeded.push((record.source_id.clone(), at));
                    }
                    _ => {}
                }
            }
            self.store
                .queue_outcomes(
                    run.project_id,
                    run.id,
                    &run.target_role,
                    &failed,
                    &succeeded,
                )
                .await?;
            if page.len() < PAGE as usize {
                break;
            }
        }
        Ok(())
    }

    /// Pages through the run's records in `states` that have a SCIM id, opened.
    pub(super) async fn each_sent(
        &self,
        context: &Context,
        mut visit: impl FnMut(&domain::ports::RunRecord, domain::import::NormalizedUser),
    ) -> domain::Result<()> {
        for state in [
            RecordState::Created,
            RecordState::Updated,
            RecordState::Skipped,
        ] {
            let filter = RecordFilter {
                state: Some(state),
                error_class: None,
            };
            let mut after = None;
            loop {
                let page = self
                    .store
                    .run_records(context.run.id, &filter, after, PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.seq);
                let ids: Vec<String> = page.iter().map(|r| r.source_id.clone()).collect();
                let sealed: HashMap<String, Vec<u8>> = self
                    .store
                    .sealed_records(context.run.project_id, &ids)
                    .await?
                    .into_iter()
                    .collect();
                for record in &page {
                    if record.scim_id.is_none() {
                        continue;
                    }
                    if let Some(data) = sealed.get(&record.source_id)
                        && let Ok(user) = records::open(
                            &context.vault,
                            context.run.project_id,
                            &record.source_id,
                            data,
                        )
                    {
                        visit(record, user);
                    }
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Creates the groups of the users this run placed (or finds them) and adds the
    /// members.
    pub(super) async fn groups(&self, context: &Context) -> domain::Result<GroupSummary> {
        // Names and SCIM ids kept when the users settled: no record is opened again.
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .memberships(context.run.id, after, PAGE * 10)
                .await?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = Some(*last);
            let full = page.len() == (PAGE * 10) as usize;
            for (_, scim_id, groups) in page {
                for group in groups.lines().filter(|g| !g.is_empty()) {
                    members
                        .entry(group.to_string())
                        .or_default()
                        .push(scim_id.clone());
                }
            }
            if !full {
                break;
            }
        }
        let pusher = Pusher::new(&context.client, context.limits, context.settings.policy);
        let mut summary = GroupSummary::default();
        for (name, ids) in &members {
            let (outcome, added) = pusher.sync_group(name, ids).await;
            summary.memberships += added;
            match outcome {
                Outcome::Created { id } => {
                    summary.created += 1;
                    summary.created_ids.push(id);
                }
                Outcome::Updated { .. } | Outcome::Skipped { .. } => summary.updated += 1,
                Outcome::Failed(f) => {
                    summary.failed += 1;
                    if summary.errors.len() < 20 {
                        summary.errors.push(format!("{name}: {}", f.detail));
                    }
                    if f.class == ErrorClass::Unauthorized {
                        break;
                    }
                }
            }
        }
        Ok(summary)
    }

    /// A rollback's groups: those the rolled-back run created — or the run it retried,
    /// whose groups a retry fills — are deleted once they hold no member; one that
    /// still holds members (the retry's, or someone's added since) is kept, and said
    /// so. A group already gone counts as deleted.
    pub(super) async fn delete_groups(
        &self,
        context: &Context,
        rolled_back: RunId,
    ) -> domain::Result<GroupSummary> {
        let mut created: Vec<String> = Vec::new();
        let mut next = Some(rolled_back);
        // A retry's parent is the run it retried (itself perhaps a retry).
        for _ in 0..MAX_RETRY_CHAIN {
            let Some(id) = next else { break };
            let (summary, _) = self.store.run_finish(id).await?;
            if let Some(groups) =
                summary.and_then(|s| serde_json::from_str::<GroupSummary>(&s).ok())
            {
                for id in groups.created_ids {
                    if !created.contains(&id) {
                        created.push(id);
                    }
                }
            }
            next = match self.store.run(id).await? {
                Some(run) if run.kind == RunKind::Retry => run.parent,
                _ => None,
            };
        }
        let mut out = GroupSummary::default();
        for id in &created {
            let path = format!("/Groups/{id}");
            let failed = |out: &mut GroupSummary, detail: String| {
                out.failed += 1;
                if out.errors.len() < 20 {
                    out.errors.push(format!("group {id}: {detail}"));
                }
            };
            let members = match context.client.get(&path).await {
                Ok(group) => match self.members_left(context, &group).await {
                    Ok(left) => left,
                    Err(detail) => {
                        // Not knowing who is left, the group stays.
                        out.kept += 1;
                        if out.errors.len() < 20 {
                            out.errors.push(format!(
                                "group {id} kept: its members could not be checked ({detail})"
                            ));
                        }
                        continue;
                    }
                },
                Err(call) if call.class() == ErrorClass::NotFound => {
                    out.deleted += 1;
                    continue;
                }
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    failed(&mut out, call.failure.detail);
                    break;
                }
                Err(call) => {
                    failed(&mut out, call.failure.detail);
                    continue;
                }
            };
            if members > 0 {
                out.kept += 1;
                if out.errors.len() < 20 {
                    out.errors.push(format!(
                        "group {id} kept: {members} of its members are still in the target"
                    ));
                }
                continue;
            }
            match context.client.delete(&path).await {
                Ok(()) => out.deleted += 1,
                Err(call) if call.class() == ErrorClass::NotFound => out.deleted += 1,
                Err(call) => failed(&mut out, call.failure.detail),
            }
        }
        Ok(out)
    }

    /// How many of a group's members are still there: users the target still holds
    /// (some targets keep a deleted user in its groups' member lists), and any member
    /// that is not a user (a nested group).
    async fn members_left(
        &self,
        context: &Context,
        group: &serde_json::Value,
    ) -> Result<usize, String> {
        let members = group["members"].as_array().cloned().unwrap_or_default();
        let mut users = Vec::new();
        let mut left = 0;
        for member in &members {
            let is_group = member["type"].as_str() == Some("Group")
                || member["$ref"]
                    .as_str()
                    .is_some_and(|r| r.contains("/Groups/"));
            match member["value"].as_str() {
                Some(id) if !is_group => users.push(id.to_string()),
                _ => left += 1,
            }
        }
        for chunk in users.chunks(MEMBERS_PER_LOOKUP) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let found = context
                .client
                .filter_any("/Users", "id", &ids)
                .await
                .map_err(|call| call.failure.detail)?;
            // A target that filters loosely may answer with others: only these count.
            left += found
                .iter()
                .filter_map(|user| user["id"].as_str())
                .filter(|id| ids.contains(id))
                .count();
        }
        Ok(left)
    }

    /// Reads every user the test run created or updated back from the target and
    /// compares it with what the mapping makes of the record now (the same mapping
    /// version: what was sent, less the password).
    pub(super) async fn read_back(&self, context: &Context) -> domain::Result<ReadBack> {
        let mut sent: Vec<(String, String, serde_json::Value)> = Vec::new();
        self.each_sent(context, |record, user| {
            if record.state == RecordState::Skipped {
                return;
            }
            if let Some(id) = &record.scim_id {
                sent.push((
                    record.source_id.clone(),
                    id.clone(),
                    context.mapping.map(&user).resource,
                ));
            }
        })
        .await?;
        let mut found = ReadBack::default();
        for (source_id, scim_id, resource) in sent {
            found.checked += 1;
            match context.client.get(&format!("/Users/{scim_id}")).await {
                Ok(kept) => {
                    let differences = diff(&resource, &kept);
                    if differences.is_empty() {
                        found.matching += 1;
                    }
                    for (path, sent, received) in differences {
                        if found.mismatches.len() < MAX_MISMATCHES {
                            found.mismatches.push(Mismatch {
                                source_id: source_id.clone(),
                                scim_id: scim_id.clone(),
                                path,
                                sent,
                                received,
                            });
                        } else {
                            found.more_mismatches += 1;
                        }
                    }
                }
                Err(call) if call.class() == ErrorClass::NotFound => found.missing += 1,
                Err(call) => {
                    found.unreadable += 1;
                    if found.unreadable_reason.is_none() {
                        found.unreadable_reason = Some(call.failure.detail);
                    }
                }
            }
        }
        Ok(found)
    }
}
