//! The workers: each claims a batch under a lease, opens and maps its records, pushes
//! them (looking up first what an earlier attempt may have sent) while the lease is
//! renewed, and settles every outcome; the next batch is readied meanwhile.

use super::*;

impl Inner {
    /// One worker: claims a batch, pushes it while its lease is renewed, settles it;
    /// until nothing is left, the run stops running, or a pause is called for. The
    /// next batch is claimed, opened and mapped while the current one is pushed, so
    /// the target never waits for the database or the mapping.
    pub(super) async fn work(
        &self,
        context: Arc<Context>,
        n: u32,
        drive: &Drive,
    ) -> domain::Result<()> {
        let id = context.run.id;
        let owner = format!("{}:{n}", self.instance);
        let lease = chrono::Duration::from_std(self.config.lease)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        let result = self.work_batches(&context, &owner, lease, drive).await;
        // Whatever is still claimed (a batch readied ahead, records held back by a
        // 401) goes back to pending.
        self.store.release(id, &owner).await?;
        result
    }

    pub(super) async fn work_batches(
        &self,
        context: &Arc<Context>,
        owner: &str,
        lease: chrono::Duration,
        drive: &Drive,
    ) -> domain::Result<()> {
        let id = context.run.id;
        if drive.stop.is_cancelled() || self.run(id).await?.state != RunState::Running {
            return Ok(());
        }
        // `None` when nothing is pending: what is in flight then is another worker's
        // (the drive waits for those of other instances once every worker here is done).
        let mut next = self.ready(context, owner, lease).await?;
        while let Some(current) = next.take() {
            let started = Instant::now();
            if let Some((rate, slot)) = &drive.pace {
                let at = {
                    let mut slot = slot.lock().await;
                    let at = (*slot).max(Instant::now());
                    *slot = at + Duration::from_secs_f64(current.claimed.len() as f64 / rate);
                    at
                };
                tokio::time::sleep_until(at.into()).await;
            }
            let claimed: Vec<u64> = current.claimed.iter().map(|c| c.seq).collect();
            let ahead = async {
                let clock = Instant::now();
                let next = self.ready(context, owner, lease).await;
                (next, clock.elapsed())
            };
            let ((batch, pushed), (following, readied)) = self
                .with_heartbeat(id, owner, lease, async {
                    let push = async {
                        let clock = Instant::now();
                        let batch = self.send(context, owner, current, &drive.stop).await;
                        (batch, clock.elapsed())
                    };
                    Ok(tokio::join!(push, ahead))
                })
                .await?;
            // The outcomes are kept first, whatever became of readying the next batch.
            let settle = Instant::now();
            let kept = self
                .store
                .settle(id, owner, &batch.settled, Utc::now())
                .await?;
            let settled = settle.elapsed();
            next = following?;
            if batch.lost || (kept as usize) < batch.settled.len() {
                // Records settled by nobody here were taken up by another worker after
                // this one's lease lapsed; that worker settles them. This one stops.
                tracing::warn!(
                    run = %id,
                    owner,
                    kept,
                    outcomes = batch.settled.len(),
                    "records were no longer this worker's; it stops"
                );
                break;
            }
            tracing::debug!(
                run = %id,
                owner,
                records = claimed.len(),
                push_ms = pushed.as_millis(),
                ready_next_ms = readied.as_millis(),
                settle_ms = settled.as_millis(),
                batch_ms = started.elapsed().as_millis(),
                "a batch settled"
            );
            // Records not settled (the target refused the credentials before they
            // were sent) go back to pending for after the pause; those a request may
            // have carried stay claimed until the worker releases them.
            if batch.settled.len() + batch.early.len() + batch.held.len() < claimed.len() {
                let unsent: Vec<u64> = claimed
                    .iter()
                    .copied()
                    .filter(|seq| {
                        batch.settled.binary_search_by_key(seq, |s| s.seq).is_err()
                            && batch.early.binary_search(seq).is_err()
                            && !batch.held.contains(seq)
                    })
                    .collect();
                self.store.unclaim(id, owner, &unsent).await?;
            }
            let mut pause = batch.pause;
            {
                // In the records' order: the users settled early (found, so created)
                // among the others, never all in one block, which would make the
                // batch's failures look like a run of them.
                let mut ended: Vec<(u64, bool)> = batch
                    .settled
                    .iter()
                    .filter(|s| s.error_class.as_deref() != Some(classes::LEFT_BEHIND))
                    .map(|s| (s.seq, s.state == RecordState::Failed))
                    .chain(batch.early.iter().map(|seq| (*seq, false)))
                    .collect();
                ended.sort_unstable_by_key(|(seq, _)| *seq);
                let mut guard = lock(&drive.guard);
                for (_, failed) in ended {
                    if let Some(reason) = guard.settle(failed)
                        && pause.is_none()
                    {
                        pause = Some(reason);
                    }
                }
            }
            let run = self.run(id).await?;
            self.publish(&run, drive);
            if let Some(reason) = pause {
                if matches!(reason, PauseReason::FailureRate { .. }) {
                    lock(&drive.guard).reset();
                }
                self.pause(id, reason).await?;
                drive.stop.cancel();
                break;
            }
            if drive.stop.is_cancelled() || run.state != RunState::Running {
                break;
            }
        }
        // The batch readied ahead of a stop was never sent.
        if let Some(ahead) = next {
            let seqs: Vec<u64> = ahead.claimed.iter().map(|c| c.seq).collect();
            self.store.unclaim(id, owner, &seqs).await?;
        }
        Ok(())
    }

    /// Claims the next batch and, for a push, opens and maps its records; `None`
    /// when nothing is pending.
    pub(super) async fn ready(
        &self,
        context: &Arc<Context>,
        owner: &str,
        lease: chrono::Duration,
    ) -> domain::Result<Option<Ready>> {
        let now = Utc::now();
        let claimed = self
            .store
            .claim(context.run.id, owner, context.batch, now, now + lease)
            .await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let prepared = match context.run.kind {
            RunKind::Rollback | RunKind::InviteWave | RunKind::Reconcile | RunKind::DeltaRun => {
                Vec::new()
            }
            _ => self.prepare(context, &claimed).await?,
        };
        Ok(Some(Ready { claimed, prepared }))
    }

    /// Runs `work` while renewing `owner`'s lease a few times per lease.
    pub(super) async fn with_heartbeat<T>(
        &self,
        id: RunId,
        owner: &str,
        lease: chrono::Duration,
        work: impl std::future::Future<Output = domain::Result<T>>,
    ) -> domain::Result<T> {
        let renew = || self.store.heartbeat(id, owner, Utc::now() + lease);
        renewing_beside(work, self.config.lease, renew, |err| {
            tracing::warn!(run = %id, error = %err, "renewing a lease failed; trying again");
        })
        .await
    }

    pub(super) async fn send(
        &self,
        context: &Arc<Context>,
        owner: &str,
        ready: Ready,
        stop: &CancellationToken,
    ) -> Batch {
        match context.run.kind {
            RunKind::Rollback => self.delete(context, &ready.claimed).await,
            RunKind::InviteWave => self.invite(context, &ready.claimed).await,
            RunKind::Reconcile => self.reconcile(context, &ready.claimed).await,
            RunKind::DeltaRun => self.delta(context, owner, &ready.claimed, stop).await,
            _ => self.push(context, owner, ready.prepared, stop).await,
        }
    }

    /// Opens, places and maps a batch's records, off the async threads.
    pub(super) async fn prepare(
        &self,
        context: &Arc<Context>,
        claimed: &[Claimed],
    ) -> domain::Result<Vec<Prepared>> {
        let project = context.run.project_id;
        let ids: Vec<String> = claimed.iter().map(|c| c.source_id.clone()).collect();
        let sealed: HashMap<String, Vec<u8>> = self
            .store
            .sealed_records(project, &ids)
            .await?
            .into_iter()
            .collect();
        let (vault, ctx, batch) = (context.vault.clone(), context.clone(), claimed.to_vec());
        tokio::task::spawn_blocking(move || {
            batch
                .iter()
                .map(|c| prepare(&vault, &ctx, c, sealed.get(&c.source_id)))
                .collect()
        })
        .await
        .map_err(|e| DomainError::Internal(format!("mapping a batch: {e}")))
    }

    /// Pushes the users that move; the others are settled as prepared.
    pub(super) async fn push(
        &self,
        context: &Arc<Context>,
        owner: &str,
        prepared: Vec<Prepared>,
        stop: &CancellationToken,
    ) -> Batch {
        let mut out = Vec::with_capacity(prepared.len());
        let mut users = Vec::new();
        let mut seqs = Vec::new();
        for p in prepared {
            match p {
                Prepared::Settle(s) => out.push(s),
                Prepared::Push {
                    seq,
                    user,
                    groups,
                    moved,
                } => {
                    seqs.push((seq, groups, moved));
                    users.push(user);
                }
            }
        }
        if users.is_empty() {
            return Batch {
                settled: out,
                ..Batch::default()
            };
        }
        // Marked as sent as the batch leaves: after a crash, only batches that may
        // have reached the target are looked up. A batch that cannot be marked is not
        // sent.
        let leaving: Vec<u64> = seqs.iter().map(|(seq, ..)| *seq).collect();
        // A failed mark (a deadlock between instances on PostgreSQL, say) is tried
        // once more; failing again, the batch goes back unsent and is claimed later.
        let mut marked = self
            .store
            .mark_sent(context.run.id, owner, &leaving, Utc::now())
            .await;
        if marked.is_err() {
            marked = self
                .store
                .mark_sent(context.run.id, owner, &leaving, Utc::now())
                .await;
        }
        if let Err(err) = marked {
            tracing::warn!(run = %context.run.id, error = %err, "a batch could not be marked as sent; it goes back unsent");
            return Batch {
                settled: out,
                ..Batch::default()
            };
        }
        // Users found created by an earlier attempt are settled as their look-ups
        // answer: a crash during the rest of the batch does not look them up again.
        let (found, mut reported) = tokio::sync::mpsc::unbounded_channel();
        let pushing = async {
            Pusher::new(&context.client, context.limits, context.settings.policy)
                .with_stop(stop.clone())
                .with_found(found)
                .with_listings(context.listings.clone())
                .push(&users, &[])
                .await
        };
        let settling = async {
            let (mut early, mut lost) = (Vec::new(), false);
            while let Some(found) = reported.recv().await {
                let outcomes: Vec<Settled> = found
                    .into_iter()
                    .map(|(i, id)| Settled {
                        seq: seqs[i].0,
                        state: RecordState::Created,
                        scim_id: Some(id),
                        error_class: None,
                        error_detail: None,
                        scim_type: None,
                        groups: seqs[i].1.clone(),
                        moved: Some(seqs[i].2.clone()),
                    })
                    .collect();
                match self
                    .store
                    .settle(context.run.id, owner, &outcomes, Utc::now())
                    .await
                {
                    Ok(kept) => {
                        lost |= (kept as usize) < outcomes.len();
                        early.extend(outcomes.iter().map(|o| o.seq));
                    }
                    // Settled with the rest of the batch instead.
                    Err(err) => {
                        tracing::warn!(run = %context.run.id, error = %err, "users found could not be settled at once");
                    }
                }
            }
            early.sort_unstable();
            (early, lost)
        };
        let (report, (early, lost)) = tokio::join!(pushing, settling);
        let stopped = report.stopped.is_some();
        let interrupted = report.interrupted;
        let mut held = Vec::new();
        for (((seq, groups, moved), outcome), sent) in
            seqs.into_iter().zip(report.users).zip(report.sent)
        {
            if early.binary_search(&seq).is_ok() {
                continue;
            }
            let done = match outcome {
                Outcome::Created { id } => Settled {
                    seq,
                    state: RecordState::Created,
                    scim_id: Some(id),
                    error_class: None,
                    error_detail: None,
                    scim_type: None,
                    groups,
                    moved: Some(moved),
                },
                Outcome::Updated { id, changed } => Settled {
                    seq,
                    state: RecordState::Updated,
                    scim_id: Some(id),
                    error_class: None,
                    error_detail: Some(if changed.is_empty() {
                        "the user exists (same externalId) and was already up to date".into()
                    } else {
                        format!(
                            "the user exists (same externalId); replaced {} (never its \
                             password or status)",
                            changed.join(", ")
                        )
                    }),
                    scim_type: None,
                    groups,
                    moved: Some(moved),
                },
                Outcome::Skipped { id } => Settled {
                    scim_id: Some(id),
                    groups,
                    moved: Some(moved),
                    ..settled(
                        seq,
                        RecordState::Skipped,
                        ErrorClass::AlreadyExists.as_str(),
                        "the user exists in the target and the policy is to skip",
                    )
                },
                // Not settled because the target refused the credentials: back to
                // pending, for after the pause; held while it may have been sent.
                // Waiting when the run paused or was cancelled: given back the same way.
                Outcome::Failed(f)
                    if (stopped && f.class == ErrorClass::Unauthorized)
                        || (interrupted && f.class == ErrorClass::Throttled) =>
                {
                    if sent {
                        held.push(seq);
                    }
                    continue;
                }
                Outcome::Failed(f) => Settled {
                    scim_type: f.scim_type,
                    ..settled(seq, RecordState::Failed, f.class.as_str(), f.detail)
                },
            };
            out.push(done);
        }
        out.sort_by_key(|s| s.seq);
        Batch {
            settled: out,
            early,
            lost,
            held,
            // Interrupted: whoever stopped the run has set its state already.
            pause: report
                .stopped
                .filter(|_| !interrupted)
                .map(|f| PauseReason::Unauthorized {
                    status: f.status.unwrap_or(401),
                }),
        }
    }
}

/// Opens one record, places it in its user type and maps it.
/// Opens a claimed record, or settles it failed with why it cannot be.
pub(super) fn open_claimed(
    vault: &Vault,
    context: &Context,
    claimed: &Claimed,
    sealed: Option<&Vec<u8>>,
) -> Result<domain::import::NormalizedUser, Box<Settled>> {
    let seq = claimed.seq;
    let Some(sealed) = sealed else {
        return Err(Box::new(settled(
            seq,
            RecordState::Failed,
            classes::MISSING_RECORD,
            "the record is no longer in the project (a newer export removed it)",
        )));
    };
    records::open(vault, context.run.project_id, &claimed.source_id, sealed).map_err(|err| {
        tracing::error!(run = %context.run.id, seq, error = %err, "a record did not open");
        Box::new(settled(
            seq,
            RecordState::Failed,
            classes::MISSING_RECORD,
            "the stored record cannot be opened with this server key",
        ))
    })
}

/// A record the mapping rejects, settled failed with each rule's words.
pub(super) fn mapping_failed(seq: u64, failures: &[domain::mapping::RuleFailure]) -> Settled {
    let detail = failures
        .iter()
        .map(|f| format!("rule {}: {}", f.rule + 1, f.message))
        .collect::<Vec<_>>()
        .join("; ");
    settled(seq, RecordState::Failed, classes::MAPPING, detail)
}

pub(super) fn prepare(
    vault: &Vault,
    context: &Context,
    claimed: &Claimed,
    sealed: Option<&Vec<u8>>,
) -> Prepared {
    {
        let seq = claimed.seq;
        let user = match open_claimed(vault, context, claimed, sealed) {
            Ok(user) => user,
            Err(failed) => return Prepared::Settle(*failed),
        };
        let user_type = context.user_types.place(&user);
        let Some(user_type) = user_type.filter(|s| context.user_types.included(*s)) else {
            let why = match user_type.and_then(|s| context.settings.user_types.user_types.get(s)) {
                Some(s) => format!("the user type {:?} stays behind", s.name),
                None => "the user is in no user type".into(),
            };
            return Prepared::Settle(settled(
                seq,
                RecordState::Skipped,
                classes::LEFT_BEHIND,
                why,
            ));
        };
        let mut mapped = context.mapping.map(&user);
        if !mapped.failures.is_empty() {
            return Prepared::Settle(mapping_failed(seq, &mapped.failures));
        }
        if let Some(action) = context.actions.get(user_type) {
            apply_password(&mut mapped.resource, action, random_password);
        }
        let text = |key: &str| {
            mapped
                .resource
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let groups = (!user.groups.is_empty()).then(|| user.groups.join("\n"));
        let moved = Moved {
            user_type: context.settings.user_types.user_types[user_type]
                .name
                .clone(),
            password: context.settings.user_types.user_types[user_type].password,
        };
        Prepared::Push {
            seq,
            groups,
            moved,
            user: UserPush {
                external_id: text("externalId"),
                user_name: text("userName"),
                maybe_sent: claimed.sent,
                sent_at: claimed.sent_at,
                data: mapped.resource,
            },
        }
    }
}

/// Runs `work` while `renew` extends its lease every third of `lease`. The renewals go
/// on beside the work, never in its stead: `work` may hold a transaction on the very
/// records a renewal touches, and must go on to commit it while a renewal waits (a
/// renewal awaited instead of the work waited for the work, for good). A worker whose
/// renewals keep failing for two thirds of a lease stops: another takes its records up.
async fn renewing_beside<T, R>(
    work: impl std::future::Future<Output = domain::Result<T>>,
    lease: Duration,
    renew: impl Fn() -> R,
    failed: impl Fn(&DomainError),
) -> domain::Result<T>
where
    R: std::future::Future<Output = domain::Result<u64>>,
{
    let renewing = async {
        let mut beat = tokio::time::interval(lease / 3);
        beat.tick().await;
        let mut renewed = tokio::time::Instant::now();
        loop {
            beat.tick().await;
            match renew().await {
                Ok(_) => renewed = tokio::time::Instant::now(),
                Err(err) if renewed.elapsed() >= lease * 2 / 3 => {
                    return DomainError::Internal(format!(
                        "the lease on the run's records could not be renewed: {err}"
                    ));
                }
                Err(err) => failed(&err),
            }
        }
    };
    tokio::select! {
        result = work => result,
        lapsed = renewing => Err(lapsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The work holds a lock (as a transaction holds its rows) across a renewal that
    /// needs the same lock: the work must still finish, and then the renewal runs.
    #[tokio::test(start_paused = true)]
    async fn a_renewal_waiting_on_the_work_does_not_stop_the_work() {
        let rows = std::sync::Arc::new(tokio::sync::Mutex::new(0u64));
        let lease = Duration::from_secs(3);
        let work = {
            let rows = rows.clone();
            async move {
                let mut held = rows.lock().await;
                // Longer than a third of the lease: a renewal comes due meanwhile.
                tokio::time::sleep(lease).await;
                *held += 1;
                Ok::<_, DomainError>(*held)
            }
        };
        let renew = || {
            let rows = rows.clone();
            async move { Ok(*rows.lock().await) }
        };
        let done =
            tokio::time::timeout(lease * 10, renewing_beside(work, lease, renew, |_| {})).await;
        assert_eq!(done.expect("the work was left waiting").unwrap(), 1);
    }

    /// Renewals that keep failing stop the work with the reason.
    #[tokio::test(start_paused = true)]
    async fn a_lease_that_cannot_be_renewed_stops_the_work() {
        let lease = Duration::from_secs(3);
        let work = std::future::pending::<domain::Result<()>>();
        let renew = || async { Err(DomainError::Internal("the database is gone".into())) };
        let err = renewing_beside(work, lease, renew, |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DomainError::Internal(m) if m.contains("could not be renewed")),
            "{err:?}"
        );
    }
}
