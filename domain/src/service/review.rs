//! The use-cases of support staff's review: the project's queue of failed users (found
//! by keyed digest, filtered, grouped, paged by key), a record's page (masked unless
//! the viewer may see personal data), corrections kept beside the import with a live
//! preview, actions on one or many users, retries through the run engine, and the
//! owner's grant to see personal data. Support staff of an assigned project may do all
//! of it; every change is audited.

use super::{Ferry, PreviewRecord, goals::preview_record};
use crate::{
    DomainError, Result,
    accounts::Actor,
    assess::mask,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{AccountId, ProjectId, RunId},
    import::NormalizedUser,
    review::{
        ActionResult, Attempt, BACKGROUND_FROM, Correction, CorrectionInfo, CorrectionsReport,
        GroupBy, GroupCount, MAX_GROUPS, MAX_ROW_PROBLEMS, MAX_SELECTED, NewReviewEvent, Outcome,
        QueueFilter, QueueItem, QueuePage, RecordFields, ReviewAction, ReviewEvent, ReviewState,
        ReviewSummary, ReviewTask, RowProblem, Selection, StoredFilter, TaskState,
        parse_corrections, search_keys,
    },
    roles::{Permission, Role},
    runs::Run,
    scim::outcome::ErrorClass,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Users one queue page holds at most.
pub const MAX_QUEUE_PAGE: u32 = 500;

/// Matching users are counted exactly up to this many; beyond, the page says "more
/// than" (counting a million rows for every page costs more than it tells). Views
/// without other filters are always counted exactly, from the tally.
pub const COUNTED_UP_TO: u64 = 10_000;

/// A queued user's page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordReview {
    pub source_id: String,
    /// Its row in the queue, if it ever failed.
    pub item: Option<QueueItem>,
    /// The record as imported (masked unless the viewer may see personal data);
    /// `None` when a newer export removed it.
    pub imported: Option<RecordFields>,
    /// The correction kept beside it, as the viewer may see it.
    pub corrected: Option<RecordFields>,
    pub correction: Option<CorrectionInfo>,
    /// What the latest mapping makes of the record (the correction, if any).
    pub mapped: Option<PreviewRecord>,
    /// The latest mapping version, if one is saved.
    pub mapping_version: Option<u32>,
    pub attempts: Vec<Attempt>,
    pub history: Vec<ReviewEvent>,
    /// Values are masked for this viewer.
    pub masked: bool,
}

/// A correction tried before it is saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionPreview {
    /// Fields the correction changes.
    pub changed: Vec<String>,
    pub record: RecordFields,
    pub mapped: Option<PreviewRecord>,
    /// The mapping accepts the corrected record.
    pub maps_cleanly: bool,
}

/// Support staff's queue, filters and groupings as the page shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueView {
    pub page: QueuePage,
    /// Users the filter matches, counted up to one more than `COUNTED_UP_TO` (above
    /// it: "more than 10,000"; a view without other filters is counted exactly).
    pub matching: u64,
    pub summary: ReviewSummary,
    /// Members a user can be assigned to: the project's support staff, administrators
    /// and owners, as `(id, name)`.
    pub members: Vec<(AccountId, String)>,
    /// Values are masked for this viewer.
    pub masked: bool,
}

/// An export of the queue under way: what it reads and how it shows values.
#[derive(Clone, Debug)]
pub struct ReviewExport {
    pub project: ProjectId,
    filter: StoredFilter,
    pub unmasked: bool,
}

/// Legacy ids chosen one by one, checked and each once.
fn chosen_ids(ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Err(DomainError::invalid("ids", "select at least one user"));
    }
    if ids.len() > MAX_SELECTED {
        return Err(DomainError::invalid(
            "ids",
            format!("at most {MAX_SELECTED} users by id; select by filter for more"),
        ));
    }
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// An action on `n` users for the audit log: what and how many; reasons and comments,
/// which may quote a customer, stay in the users' history.
fn audit_words(action: &ReviewAction, n: u64, detail: &str) -> String {
    format!(
        "{} on {} user(s){}",
        action.code(),
        crate::numbers::grouped(n),
        match action {
            ReviewAction::SetState { state } => format!(": {}", state.as_str()),
            ReviewAction::Assign { .. } => format!(": {detail}"),
            _ => String::new(),
        }
    )
}

/// Classes whose request may have reached the target: a retry looks the user up
/// before sending it again.
fn may_have_reached(class: &str) -> bool {
    match ErrorClass::parse(class) {
        Some(ErrorClass::InvalidData | ErrorClass::Unauthorized) => false,
        Some(_) => true,
        // Ferry's own classes (a mapping rule, a missing record) never left.
        None => false,
    }
}

/// Every string in a JSON value masked (keys and `schemas` kept).
fn mask_json(value: &mut Json) {
    match value {
        Json::String(s) => *s = mask(s),
        Json::Array(items) => items.iter_mut().for_each(mask_json),
        Json::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key != "schemas" {
                    mask_json(v);
                }
            }
        }
        _ => {}
    }
}

fn mask_preview(preview: &mut PreviewRecord) {
    mask_json(&mut preview.resource);
    for rule in &mut preview.rules {
        if let Some(source) = &mut rule.source {
            *source = mask(source);
        }
        if let Some(value) = &mut rule.value {
            mask_json(value);
        }
    }
}

impl Ferry {
    /// Support staff of the project (assigned), administrators and owners.
    async fn may_review(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        actor.require(Permission::ViewProjects)?;
        self.project(actor, project).await.map(|_| ())
    }

    /// Acting changes the project: not while it is archived or after its purge.
    async fn may_act_on_review(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        self.may_review(actor, project).await?;
        Self::refuse_if_closed(&self.project(actor, project).await?)
    }

    /// Owners and administrators manage the mapping, which shows records, so they
    /// see personal data; support staff see it masked unless an owner granted it.
    pub async fn sees_personal_data(&self, actor: &Actor) -> Result<bool> {
        Ok(match actor.role {
            Role::Owner | Role::Admin => true,
            Role::Support => self.store.personal_data_grant(actor.account_id).await?,
        })
    }

    async fn stored_filter(
        &self,
        actor: &Actor,
        project: ProjectId,
        filter: &QueueFilter,
    ) -> Result<StoredFilter> {
        let work = self.workers.records.as_ref();
        let mut stored = filter.stored(|key| work.search_digest(project, key))?;
        stored.text_in_pattern = !self.sees_personal_data(actor).await?;
        Ok(stored)
    }

    /// Members a queued user may be assigned to.
    async fn assignable(&self, project: ProjectId) -> Result<Vec<(AccountId, String)>> {
        let mut members: Vec<(AccountId, String)> = self
            .store
            .project_support(project)
            .await?
            .into_iter()
            .map(|a| (a.id, a.display_name))
            .collect();
        let mut offset = 0;
        loop {
            let page = self
                .store
                .list_accounts(crate::pagination::PageRequest::new(Some(offset), Some(200)))
                .await?;
            let n = page.items.len() as u64;
            members.extend(
                page.items
                    .into_iter()
                    .filter(|a| {
                        a.role != Role::Support
                            && a.status == crate::accounts::AccountStatus::Active
                    })
                    .map(|a| (a.id, a.display_name)),
            );
            offset += n;
            if n < 200 || offset >= page.total {
                break;
            }
        }
        members.sort_by(|a, b| a.1.cmp(&b.1));
        members.dedup_by_key(|m| m.0);
        Ok(members)
    }

    /// A page of the project's queue, how many users the filter matches, and where
    /// the project's users stand.
    pub async fn review_queue(
        &self,
        actor: &Actor,
        project: ProjectId,
        filter: &QueueFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<QueueView> {
        self.may_review(actor, project).await?;
        let stored = self.stored_filter(actor, project, filter).await?;
        let limit = limit.clamp(1, MAX_QUEUE_PAGE);
        let mut items = self.store.queue(project, &stored, after, limit).await?;
        let next_after = (items.len() == limit as usize)
            .then(|| items.last().map(|i| i.source_id.clone()))
            .flatten();
        let masked = stored.text_in_pattern;
        if masked {
            items.iter_mut().for_each(QueueItem::redact);
        }
        Ok(QueueView {
            page: QueuePage { items, next_after },
            matching: self
                .store
                .queue_count(project, &stored, Some(COUNTED_UP_TO + 1))
                .await?,
            summary: self.store.queue_summary(project).await?,
            members: self.assignable(project).await?,
            masked,
        })
    }

    /// Where the project's users stand (the overview's notice).
    pub async fn review_summary(&self, actor: &Actor, project: ProjectId) -> Result<ReviewSummary> {
        self.may_review(actor, project).await?;
        self.store.queue_summary(project).await
    }

    /// The users the filter matches, counted by `by`, with each key in words.
    pub async fn review_groups(
        &self,
        actor: &Actor,
        project: ProjectId,
        filter: &QueueFilter,
        by: GroupBy,
    ) -> Result<Vec<GroupCount>> {
        self.may_review(actor, project).await?;
        let stored = self.stored_filter(actor, project, filter).await?;
        let groups = self
            .store
            .queue_groups(project, &stored, by, MAX_GROUPS)
            .await?;
        let members = match by {
            GroupBy::Assignee => self.assignable(project).await?,
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(groups.len());
        for (key, count) in groups {
            let label = match (by, key.as_deref()) {
                (_, None) => match by {
                    GroupBy::Assignee => "nobody".to_string(),
                    GroupBy::UserType => "no user type".to_string(),
                    _ => "none".to_string(),
                },
                (GroupBy::Class, Some(k)) => crate::review::class_label(k),
                (GroupBy::State, Some(k)) => ReviewState::parse(k)
                    .map(|s| s.label().to_string())
                    .unwrap_or_else(|| k.to_string()),
                (GroupBy::Assignee, Some(k)) => members
                    .iter()
                    .find(|(id, _)| id.0.to_string() == k)
                    .map(|(_, name)| name.clone())
                    .unwrap_or_else(|| "a former member".into()),
                (GroupBy::Run, Some(k)) => match uuid::Uuid::parse_str(k) {
                    Ok(id) => match self.store.run(RunId(id)).await? {
                        Some(run) => format!(
                            "{} of {}",
                            run.kind.label(),
                            run.created_at.format("%Y-%m-%d %H:%M UTC")
                        ),
                        None => k.to_string(),
                    },
                    Err(_) => k.to_string(),
                },
                (_, Some(k)) => k.to_string(),
            };
            out.push(GroupCount { key, label, count });
        }
        Ok(out)
    }

    /// The latest mapping applied to `user`, as the viewer may see it.
    async fn mapped(
        &self,
        project: ProjectId,
        user: &NormalizedUser,
        unmasked: bool,
    ) -> Result<(Option<PreviewRecord>, Option<u32>)> {
        let Some(version) = self.store.mapping_version(project, None).await? else {
            return Ok((None, None));
        };
        let (compiled, problems) = self.compile_for_records(project, &version.mapping).await?;
        let hidden: Vec<usize> = problems.iter().filter_map(|p| p.rule).collect();
        let user_types = self.saved_user_types(project).await?;
        let placed = user_types.user_types.compile(self.now()).ok();
        let mut preview = preview_record(
            &version.mapping,
            &compiled,
            &hidden,
            placed.as_ref(),
            &user_types.user_types,
            user,
        );
        if !unmasked {
            mask_preview(&mut preview);
        }
        Ok((Some(preview), Some(version.version)))
    }

    /// The imported record and the correction, opened.
    async fn record_versions(
        &self,
        project: ProjectId,
        source_id: &str,
    ) -> Result<(
        Option<(String, NormalizedUser)>,
        Option<(NormalizedUser, CorrectionInfo)>,
    )> {
        let work = self.workers.records.as_ref();
        let imported = match self.store.imported_record(project, source_id).await? {
            Some((digest, data)) => {
                Some((digest, work.open_record(project, source_id, &data).await?))
            }
            None => None,
        };
        let corrected = match self.store.correction(project, source_id).await? {
            Some((data, info)) => Some((work.open_record(project, source_id, &data).await?, info)),
            None => None,
        };
        Ok((imported, corrected))
    }

    /// A legacy user's page: the record as imported and as corrected, what the latest
    /// mapping makes of it, every run's attempt, and its history.
    pub async fn review_record(
        &self,
        actor: &Actor,
        project: ProjectId,
        source_id: &str,
    ) -> Result<RecordReview> {
        self.may_review(actor, project).await?;
        let unmasked = self.sees_personal_data(actor).await?;
        let mut item = self.store.queue_item(project, source_id).await?;
        let mut attempts = self.store.attempts(project, source_id).await?;
        if !unmasked {
            item.iter_mut().for_each(QueueItem::redact);
            for attempt in &mut attempts {
                attempt.detail = attempt.detail.as_deref().map(crate::review::pattern);
            }
        }
        let (imported, corrected) = self.record_versions(project, source_id).await?;
        if item.is_none() && imported.is_none() {
            return Err(DomainError::NotFound("record".into()));
        }
        let current = corrected
            .as_ref()
            .map(|(u, _)| u)
            .or(imported.as_ref().map(|(_, u)| u));
        let (mapped, mapping_version) = match current {
            Some(user) => self.mapped(project, user, unmasked).await?,
            None => (None, None),
        };
        Ok(RecordReview {
            source_id: source_id.to_string(),
            item,
            imported: imported
                .as_ref()
                .map(|(_, u)| RecordFields::of(u, unmasked)),
            corrected: corrected
                .as_ref()
                .map(|(u, _)| RecordFields::of(u, unmasked)),
            correction: corrected.map(|(_, info)| info),
            mapped,
            mapping_version,
            attempts,
            history: self.store.queue_events(project, source_id).await?,
            masked: !unmasked,
        })
    }

    /// The record with `correction` applied to it (over an earlier correction, if
    /// any) and what the latest mapping makes of it, without saving anything.
    pub async fn preview_correction(
        &self,
        actor: &Actor,
        project: ProjectId,
        source_id: &str,
        correction: &Correction,
    ) -> Result<CorrectionPreview> {
        self.may_review(actor, project).await?;
        let unmasked = self.sees_personal_data(actor).await?;
        let (imported, corrected) = self.record_versions(project, source_id).await?;
        let Some((_, imported)) = imported else {
            return Err(DomainError::NotFound(
                "record (a newer export removed it)".into(),
            ));
        };
        let base = corrected.map(|(u, _)| u).unwrap_or(imported);
        let (user, changed) = correction.apply(&base)?;
        let (mapped, _) = self.mapped(project, &user, unmasked).await?;
        let maps_cleanly = mapped
            .as_ref()
            .is_some_and(|m| m.rules.iter().all(|r| r.error.is_none()));
        Ok(CorrectionPreview {
            changed,
            record: RecordFields::of(&user, unmasked),
            mapped,
            maps_cleanly,
        })
    }

    /// Keeps a correction beside the imported record (never overwriting it): sealed,
    /// with who, when and which fields, audited. Runs and previews read it in place of
    /// the import from now on.
    pub async fn correct_record(
        &self,
        actor: &Actor,
        project: ProjectId,
        source_id: &str,
        correction: &Correction,
    ) -> Result<RecordReview> {
        self.may_act_on_review(actor, project).await?;
        self.save_correction(actor, project, source_id, correction)
            .await?;
        self.review_record(actor, project, source_id).await
    }

    /// Applies and keeps one correction; the fields it changed (none: nothing kept).
    async fn save_correction(
        &self,
        actor: &Actor,
        project: ProjectId,
        source_id: &str,
        correction: &Correction,
    ) -> Result<Vec<String>> {
        let work = self.workers.records.as_ref();
        let (imported, corrected) = self.record_versions(project, source_id).await?;
        let Some((digest, imported)) = imported else {
            return Err(DomainError::NotFound(
                "record (a newer export removed it)".into(),
            ));
        };
        let (earlier, mut fields) = match corrected {
            Some((user, info)) => (user, info.fields),
            None => (imported, Vec::new()),
        };
        let (user, changed) = correction.apply(&earlier)?;
        if changed.is_empty() {
            return Ok(changed);
        }
        for field in &changed {
            if !fields.contains(field) {
                fields.push(field.clone());
            }
        }
        let sealed = work.seal_record(project, &user).await?;
        let digests: Vec<String> = search_keys(&user)
            .iter()
            .map(|k| work.search_digest(project, k))
            .collect();
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::RecordCorrected,
            ObjectKind::Record,
            source_id,
        )
        .in_project(project)
        .detail(format!("corrected {}", changed.join(", ")));
        self.store
            .put_correction(
                project,
                source_id,
                &sealed,
                &digest,
                &fields,
                &digests,
                actor.account_id,
                now,
                &audit,
            )
            .await?;
        Ok(changed)
    }

    /// The legacy ids a selection names: those listed, or every user the filter
    /// matches (refused when that is no longer the number the page showed, or more
    /// than one request acts on).
    async fn selected(
        &self,
        actor: &Actor,
        project: ProjectId,
        selection: &Selection,
    ) -> Result<Vec<String>> {
        match selection {
            Selection::Ids { ids } => chosen_ids(ids),
            Selection::Filter { filter, expected } => {
                let (stored, matching) = self
                    .filter_counted(actor, project, filter, *expected)
                    .await?;
                if matching > BACKGROUND_FROM {
                    return Err(DomainError::invalid(
                        "selection",
                        format!(
                            "the filter matches {} users; a retry takes at most {} at once: narrow the filter (a real run sends every user)",
                            crate::numbers::grouped(matching),
                            crate::numbers::grouped(BACKGROUND_FROM)
                        ),
                    ));
                }
                self.ids_matching(project, &stored, matching).await
            }
        }
    }

    /// A selection's filter as stored and how many users it matches now, exactly;
    /// refused when that is not the number the page showed (a page that said "more
    /// than" showed no number to compare with).
    async fn filter_counted(
        &self,
        actor: &Actor,
        project: ProjectId,
        filter: &QueueFilter,
        expected: Option<u64>,
    ) -> Result<(StoredFilter, u64)> {
        let stored = self.stored_filter(actor, project, filter).await?;
        let mut matching = self
            .store
            .queue_count(project, &stored, Some(COUNTED_UP_TO + 1))
            .await?;
        if let Some(expected) = expected
            && expected != matching
            && matching <= COUNTED_UP_TO
        {
            return Err(DomainError::Conflict(format!(
                "the filter now matches {matching} users, not {expected}: reload the queue"
            )));
        }
        if matching > COUNTED_UP_TO {
            matching = self.store.queue_count(project, &stored, None).await?;
        }
        Ok((stored, matching))
    }

    /// Every legacy id the filter matches, page by page in legacy-id order.
    async fn ids_matching(
        &self,
        project: ProjectId,
        stored: &StoredFilter,
        matching: u64,
    ) -> Result<Vec<String>> {
        let step = MAX_QUEUE_PAGE * 2;
        let mut ids = Vec::with_capacity(matching as usize);
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .queue(project, stored, after.as_deref(), step)
                .await?;
            let n = page.len();
            after = page.last().map(|i| i.source_id.clone());
            ids.extend(page.into_iter().map(|i| i.source_id));
            if n < step as usize {
                return Ok(ids);
            }
        }
    }

    /// Assigns, sets a review state, skips with a reason or comments, on one user or
    /// many; each user's history and the audit log say who did what.
    pub async fn review_act(
        &self,
        actor: &Actor,
        project: ProjectId,
        selection: &Selection,
        action: &ReviewAction,
    ) -> Result<ActionResult> {
        self.may_act_on_review(actor, project).await?;
        action.check()?;
        let detail = self.action_detail(project, action).await?;
        let ids = match selection {
            Selection::Ids { ids } => chosen_ids(ids)?,
            Selection::Filter { filter, expected } => {
                let (stored, matching) = self
                    .filter_counted(actor, project, filter, *expected)
                    .await?;
                // Everything a large filter matches: in the background, step by step.
                if matching > BACKGROUND_FROM {
                    return self
                        .start_review_task(actor, project, action, detail, stored, matching)
                        .await;
                }
                self.ids_matching(project, &stored, matching).await?
            }
        };
        let now = self.now();
        // The audit log names the action and how many; reasons and comments, which
        // may quote a customer, stay in the users' history.
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ReviewActed,
            if ids.len() == 1 {
                ObjectKind::Record
            } else {
                ObjectKind::Project
            },
            if ids.len() == 1 {
                ids[0].clone()
            } else {
                project.to_string()
            },
        )
        .in_project(project)
        .detail(audit_words(action, ids.len() as u64, &detail));
        let event = NewReviewEvent {
            kind: action.code(),
            detail,
        };
        let affected = self
            .store
            .queue_act(
                project,
                &ids,
                action,
                &event,
                actor.account_id,
                now,
                Some(&audit),
            )
            .await?;
        Ok(ActionResult {
            affected,
            run: None,
            task: None,
        })
    }

    /// An action in words, as each user's history says it.
    async fn action_detail(&self, project: ProjectId, action: &ReviewAction) -> Result<String> {
        Ok(match action {
            ReviewAction::Assign {
                member: Some(member),
            } => {
                let members = self.assignable(project).await?;
                let name = members
                    .iter()
                    .find(|(id, _)| id == member)
                    .map(|(_, name)| name.clone())
                    .ok_or_else(|| {
                        DomainError::invalid(
                            "member",
                            "not a member who works on this project (its support staff, an administrator or an owner)",
                        )
                    })?;
                format!("assigned to {name}")
            }
            ReviewAction::Assign { member: None } => "assignment removed".to_string(),
            ReviewAction::SetState { state } => format!("marked {}", state.label().to_lowercase()),
            ReviewAction::Skip { reason } => format!("skipped: {}", reason.trim()),
            ReviewAction::Comment { text } => text.trim().to_string(),
        })
    }

    /// Stores and starts an action on every user a large filter matches; the task
    /// says how far it got.
    async fn start_review_task(
        &self,
        actor: &Actor,
        project: ProjectId,
        action: &ReviewAction,
        detail: String,
        filter: StoredFilter,
        matching: u64,
    ) -> Result<ActionResult> {
        let now = self.now();
        let task = ReviewTask {
            id: self.secrets.new_uuid(),
            project_id: project,
            action: action.clone(),
            detail: detail.clone(),
            filter,
            total: matching,
            done: 0,
            cursor: None,
            state: TaskState::Running,
            error: None,
            created_by: Some(actor.account_id),
            created_at: now,
            finished_at: None,
        };
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ReviewActed,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{} (in the background, task {})",
            audit_words(action, matching, &detail),
            task.id
        ));
        self.store.create_review_task(&task, &audit).await?;
        self.workers.records.spawn_review_task(task.clone());
        Ok(ActionResult {
            affected: 0,
            run: None,
            task: Some(task),
        })
    }

    /// A project's newest background actions, newest first.
    pub async fn review_tasks(&self, actor: &Actor, project: ProjectId) -> Result<Vec<ReviewTask>> {
        self.may_review(actor, project).await?;
        self.store.review_tasks(project, 20).await
    }

    /// Stops a background action at its next step; what it did stays done.
    pub async fn cancel_review_task(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: uuid::Uuid,
    ) -> Result<ReviewTask> {
        self.may_act_on_review(actor, project).await?;
        let task = self
            .store
            .review_task(id)
            .await?
            .filter(|t| t.project_id == project)
            .ok_or_else(|| DomainError::NotFound("review action".into()))?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::ReviewActed,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("cancelled the background task {id}"));
        if !self
            .store
            .finish_review_task(id, TaskState::Cancelled, None, self.now(), Some(&audit))
            .await?
        {
            return Err(DomainError::Conflict(format!(
                "the task has ended already ({})",
                task.state.as_str()
            )));
        }
        self.store
            .review_task(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("review action".into()))
    }

    /// Sends the selected failed users again, as a retry run against production with
    /// the latest mapping, user types and corrections. Skipped users and users a
    /// later run migrated are left out; users an earlier attempt may have created are
    /// looked up first.
    pub async fn review_retry(
        &self,
        actor: &Actor,
        project: ProjectId,
        selection: &Selection,
    ) -> Result<Run> {
        self.may_act_on_review(actor, project).await?;
        let ids = self.selected(actor, project, selection).await?;
        let mut chosen = Vec::with_capacity(ids.len());
        let mut findings = 0usize;
        for chunk in ids.chunks(MAX_QUEUE_PAGE as usize) {
            for id in chunk {
                if let Some(item) = self.store.queue_item(project, id).await?
                    && item.outcome == Outcome::Failed
                    && item.state != ReviewState::Skipped
                {
                    findings += usize::from(crate::runs::reconcile::is_finding(&item.error_class));
                    chosen.push((item.source_id, may_have_reached(&item.error_class)));
                }
            }
        }
        if chosen.is_empty() {
            return Err(DomainError::invalid(
                "selection",
                "none of the selected users waits for a retry (skipped or migrated users are not sent)",
            ));
        }
        // A reconciliation's findings are put right by replacing what the target holds
        // with what the mapping makes; other failures keep the target's own policy for
        // users it already has (a user there before the migration is not overwritten).
        if findings > 0 && findings < chosen.len() {
            return Err(DomainError::invalid(
                "selection",
                "users a reconciliation found different or gone are retried apart from other \
                 failures (their retry replaces what the target holds): choose them by their \
                 class",
            ));
        }
        let run = self
            .launch_chosen_retry(actor, project, &chosen, findings > 0)
            .await?;
        let ids: Vec<String> = chosen.into_iter().map(|(id, _)| id).collect();
        self.store
            .queue_note(
                project,
                &ids,
                actor.account_id,
                &NewReviewEvent {
                    kind: "retried",
                    detail: format!("sent again in run {}", run.id),
                },
                self.now(),
            )
            .await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::ReviewRetried,
            ObjectKind::Run,
            run.id,
        )
        .in_project(project)
        .detail(format!("{} user(s) from the review queue", ids.len()));
        self.store.append_audit(&audit).await?;
        Ok(run)
    }

    /// Opens an export of the queue (audited): the filter as stored and whether the
    /// values go out unmasked. The pages follow through [`Ferry::review_export_page`].
    pub async fn open_review_export(
        &self,
        actor: &Actor,
        project: ProjectId,
        filter: &QueueFilter,
    ) -> Result<ReviewExport> {
        self.may_review(actor, project).await?;
        let stored = self.stored_filter(actor, project, filter).await?;
        let unmasked = self.sees_personal_data(actor).await?;
        let matching = self
            .store
            .queue_count(project, &stored, Some(COUNTED_UP_TO + 1))
            .await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::ReviewExported,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{} user(s), values {}",
            if matching > COUNTED_UP_TO {
                format!("more than {}", crate::numbers::grouped(COUNTED_UP_TO))
            } else {
                crate::numbers::grouped(matching)
            },
            if unmasked { "unmasked" } else { "masked" }
        ));
        self.store.append_audit(&audit).await?;
        Ok(ReviewExport {
            project,
            filter: stored,
            unmasked,
        })
    }

    /// A page of an export as CSV rows, and where the next starts (`None` at the end).
    pub async fn review_export_page(
        &self,
        export: &ReviewExport,
        after: Option<&str>,
    ) -> Result<(Vec<Vec<String>>, Option<String>)> {
        let work = self.workers.records.as_ref();
        let limit = MAX_QUEUE_PAGE;
        let items = self
            .store
            .queue(export.project, &export.filter, after, limit)
            .await?;
        let next = (items.len() == limit as usize)
            .then(|| items.last().map(|i| i.source_id.clone()))
            .flatten();
        let ids: Vec<String> = items.iter().map(|i| i.source_id.clone()).collect();
        let sealed: std::collections::HashMap<String, Vec<u8>> = self
            .store
            .sealed_records(export.project, &ids)
            .await?
            .into_iter()
            .collect();
        let mut rows = Vec::with_capacity(items.len());
        for item in &items {
            let user = match sealed.get(&item.source_id) {
                Some(data) => work
                    .open_record(export.project, &item.source_id, data)
                    .await
                    .ok(),
                None => None,
            };
            rows.push(crate::review::export_row(
                item,
                user.as_ref(),
                export.unmasked,
            ));
        }
        Ok((rows, next))
    }

    /// Corrections from a CSV (as the export writes it, or any file with a
    /// `source_id` column and the columns to correct): each row corrects its user;
    /// rows that cannot are reported by line and field, and the others still apply.
    pub async fn import_corrections(
        &self,
        actor: &Actor,
        project: ProjectId,
        csv: &[u8],
    ) -> Result<CorrectionsReport> {
        self.may_act_on_review(actor, project).await?;
        let (rows, mut problems) = parse_corrections(csv)?;
        let mut report = CorrectionsReport {
            rows: rows.len() as u64 + problems.len() as u64,
            ..Default::default()
        };
        for row in rows {
            if row.correction.is_empty() {
                report.unchanged += 1;
                continue;
            }
            match self
                .save_correction(actor, project, &row.source_id, &row.correction)
                .await
            {
                Ok(changed) if changed.is_empty() => report.unchanged += 1,
                Ok(_) => report.corrected += 1,
                Err(DomainError::NotFound(_)) => problems.push(RowProblem {
                    line: row.line,
                    field: Some("source_id".into()),
                    message: "no user of this project has this legacy id".into(),
                }),
                Err(DomainError::Invalid { field, message }) => problems.push(RowProblem {
                    line: row.line,
                    field: Some(field),
                    message,
                }),
                Err(other) => return Err(other),
            }
        }
        problems.sort_by_key(|p| p.line);
        let had = problems.len();
        problems.truncate(MAX_ROW_PROBLEMS);
        report.problems = problems;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::CorrectionsImported,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{} row(s): {} corrected, {} unchanged, {had} with problems",
            report.rows, report.corrected, report.unchanged
        ));
        self.store.append_audit(&audit).await?;
        Ok(report)
    }

    /// Lets a member see personal data unmasked, or takes it back (owners only).
    pub async fn set_personal_data_grant(
        &self,
        actor: &Actor,
        member: AccountId,
        granted: bool,
    ) -> Result<()> {
        actor.require(Permission::ManageMembers)?;
        let account = self
            .store
            .account(member)
            .await?
            .ok_or_else(|| DomainError::NotFound("member".into()))?;
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            if granted {
                AuditAction::PersonalDataGranted
            } else {
                AuditAction::PersonalDataRevoked
            },
            ObjectKind::Account,
            account.id,
        )
        .detail(account.email.clone());
        self.store
            .set_personal_data_grant(member, granted, actor.account_id, now, &audit)
            .await
    }

    /// Members allowed to see personal data unmasked.
    pub async fn personal_data_grants(&self, actor: &Actor) -> Result<Vec<AccountId>> {
        actor.require(Permission::ManageMembers)?;
        self.store.personal_data_grants().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_that_may_have_left_are_looked_up() {
        assert!(may_have_reached("network"));
        assert!(may_have_reached("server_error"));
        assert!(may_have_reached("already_exists"));
        assert!(!may_have_reached("invalid_data"));
        assert!(!may_have_reached("mapping"));
    }

    #[test]
    fn masked_resources_keep_their_shape() {
        let mut v = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann",
            "emails": [{"value": "ann@example.com", "primary": true}]
        });
        mask_json(&mut v);
        assert_eq!(
            v["schemas"][0],
            "urn:ietf:params:scim:schemas:core:2.0:User"
        );
        assert_ne!(v["userName"], "ann");
        assert_eq!(v["emails"][0]["primary"], true);
        assert!(!v.to_string().contains("ann@example.com"));
    }
}
