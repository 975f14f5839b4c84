//! Pushing users (then groups) into a target and turning every answer into an outcome
//! per user: bulk requests packed to the target's limits and matched by `bulkId`; a
//! 409 resolved by a lookup into skip, update or fail by the project's policy; a 413
//! split and sent again; 429/503 waited out (honouring `Retry-After`); 401/403 stop
//! everything; and after a lost answer (network error, timeout, 5xx, an operation
//! missing from the answer) each user is looked up before it is sent again, so nothing
//! is created twice.

use super::client::{CallFailure, Limits, ScimClient};
use domain::scim::{
    bulk::{BulkRequest, Member, OpResult, Operation, Packer, parse_response},
    outcome::{ErrorClass, Outcome, ScimFailure},
    target::ExistingPolicy,
};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// One user to create: its SCIM representation and the keys it is looked up by.
#[derive(Clone, Debug)]
pub struct UserPush {
    /// The legacy id, sent as `externalId`.
    pub external_id: String,
    pub user_name: String,
    pub data: Value,
    /// An earlier attempt may have sent it (its worker died before settling it): it
    /// is looked up before it is sent again.
    pub maybe_sent: bool,
    /// When that earlier attempt first sent it, if known: users created since then
    /// are listed instead of asked for one filter at a time.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The users a target created since a moment, listed once and shared by every push of
/// one run on this instance: after a restart, the batches the workers take up are
/// looked up in one listing, asked for once (the others wait for it), instead of one
/// listing or many filters per batch.
#[derive(Clone, Default)]
pub struct Listings(std::sync::Arc<tokio::sync::Mutex<Option<Listed>>>);

struct Listed {
    /// Users created at or after this moment (by the target's clock, give or take
    /// [`CLOCK_SKEW`]) are in it.
    since: chrono::DateTime<chrono::Utc>,
    /// When the listing was asked for: it knows of requests that ended before then.
    asked: chrono::DateTime<chrono::Utc>,
    /// SCIM id by `externalId`.
    ids: HashMap<String, String>,
}

/// One group to create after the users, with members as indices into the users.
#[derive(Clone, Debug)]
pub struct GroupPush {
    pub display_name: String,
    pub members: Vec<usize>,
}

/// What became of everything sent.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    pub users: Vec<Outcome>,
    pub groups: Vec<Outcome>,
    /// Set when the target refused the credentials (the run must stop), or when the
    /// push was interrupted.
    pub stopped: Option<ScimFailure>,
    /// The run stopped while the push waited: users not settled are to be given back,
    /// not failed.
    pub interrupted: bool,
    /// Per user: a request carrying it may have reached the target (sent with an
    /// answer that was lost or unclear, or by an earlier attempt). A user so marked
    /// and not settled must be looked up before it is sent again.
    pub sent: Vec<bool>,
    pub requests: u64,
    pub retries: u64,
}

pub struct Pusher<'a> {
    client: &'a ScimClient,
    limits: Limits,
    policy: ExistingPolicy,
    /// Cancelled when the run pauses or is cancelled: a wait (a `Retry-After` of up to
    /// an hour) ends at once, and what is not settled is given back.
    stop: Option<tokio_util::sync::CancellationToken>,
    /// Told of each user found created by an earlier request as soon as its look-up
    /// answers (index, SCIM id), so that it can be settled before the push ends.
    found: Option<tokio::sync::mpsc::UnboundedSender<Vec<(usize, String)>>>,
    listings: Option<Listings>,
}

/// Where a user stands while a push is under way.
enum Pending {
    /// Not sent yet, or to be sent again.
    Ready,
    Done(Outcome),
}

/// One push (one call of [`Pusher::push`]): its users and where each stands. A
/// run of the engine is many of these, one per batch.
struct Attempt<'a> {
    users: &'a [UserPush],
    state: Vec<Pending>,
    attempts: Vec<u32>,
    /// See [`PushReport::sent`]: a 409 for such a user may be the answer to its own
    /// earlier request, so it is settled as created when found by its `externalId`.
    sent: Vec<bool>,
    /// When a request first carried each user, where known: the users the target
    /// created since then can be listed.
    first_sent: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    /// When this push began: a listing asked for about then knows of the requests
    /// earlier attempts made.
    started: chrono::DateTime<chrono::Utc>,
    stopped: Option<ScimFailure>,
    interrupted: bool,
    requests: u64,
    retries: u64,
}

impl Attempt<'_> {
    fn done(&mut self, i: usize, outcome: Outcome) {
        self.state[i] = Pending::Done(outcome);
    }

    /// A request carrying these users is about to leave.
    fn leaving(&mut self, indices: &[usize]) {
        let now = chrono::Utc::now();
        for &i in indices {
            self.first_sent[i].get_or_insert(now);
        }
    }

    fn is_done(&self, i: usize) -> bool {
        matches!(self.state[i], Pending::Done(_))
    }

    fn scim_id(&self, i: usize) -> Option<&str> {
        match &self.state[i] {
            Pending::Done(outcome) => outcome.scim_id(),
            Pending::Ready => None,
        }
    }
}

fn bulk_id(i: usize) -> String {
    format!("u{i}")
}

fn index_of(bulk_id: &str) -> Option<usize> {
    bulk_id.strip_prefix('u')?.parse().ok()
}

impl<'a> Pusher<'a> {
    pub fn new(client: &'a ScimClient, limits: Limits, policy: ExistingPolicy) -> Self {
        Self {
            client,
            limits,
            policy,
            stop: None,
            found: None,
            listings: None,
        }
    }

    /// Waits end when `stop` is cancelled; the push then stops sending and reports
    /// itself [`PushReport::interrupted`].
    pub fn with_stop(mut self, stop: tokio_util::sync::CancellationToken) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Each user found created by an earlier request is sent to `found` as soon as its
    /// look-up answers (its outcome in the report is [`Outcome::Created`] all the same).
    pub fn with_found(
        mut self,
        found: tokio::sync::mpsc::UnboundedSender<Vec<(usize, String)>>,
    ) -> Self {
        self.found = Some(found);
        self
    }

    /// Look-ups by listing go through `listings`, shared with the other pushes of the
    /// same run.
    pub fn with_listings(mut self, listings: Listings) -> Self {
        self.listings = Some(listings);
        self
    }

    /// Waits before another attempt; `false` (and the push stopped) when the run
    /// stopped first.
    async fn wait(&self, push: &mut Attempt<'_>, pause: std::time::Duration) -> bool {
        let Some(stop) = &self.stop else {
            tokio::time::sleep(pause).await;
            return true;
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = stop.cancelled() => {
                push.interrupted = true;
                push.stopped.get_or_insert_with(|| {
                    ScimFailure::new(ErrorClass::Throttled, None, INTERRUPTED)
                });
                false
            }
        }
    }

    /// Creates the users, then the groups; returns one outcome per user and group.
    pub async fn push(&self, users: &[UserPush], groups: &[GroupPush]) -> PushReport {
        let mut push = Attempt {
            users,
            state: users.iter().map(|_| Pending::Ready).collect(),
            attempts: vec![0; users.len()],
            sent: users.iter().map(|u| u.maybe_sent).collect(),
            first_sent: users
                .iter()
                .map(|u| u.sent_at.filter(|_| u.maybe_sent))
                .collect(),
            started: chrono::Utc::now(),
            stopped: None,
            interrupted: false,
            requests: 0,
            retries: 0,
        };
        self.found_before(&mut push).await;
        let group_outcomes = if self.limits.bulk {
            self.push_bulk(&mut push, groups).await
        } else {
            self.push_single(&mut push).await;
            self.groups_single(&push, groups).await
        };
        let stopped = push.stopped.clone();
        let sent = push.sent.clone();
        let users = push
            .state
            .into_iter()
            .map(|p| match p {
                Pending::Done(outcome) => outcome,
                Pending::Ready => Outcome::Failed(stopped.clone().unwrap_or_else(|| {
                    ScimFailure::new(ErrorClass::Protocol, None, "the user was never sent")
                })),
            })
            .collect();
        PushReport {
            users,
            groups: group_outcomes,
            stopped,
            interrupted: push.interrupted,
            sent,
            requests: push.requests,
            retries: push.retries,
        }
    }

    // ---- bulk --------------------------------------------------------------------

    async fn push_bulk(&self, push: &mut Attempt<'_>, groups: &[GroupPush]) -> Vec<Outcome> {
        let mut work: VecDeque<Vec<usize>> = VecDeque::from([(0..push.users.len()).collect()]);
        let mut packer = self.packer();
        // The users of the last request stay open so that groups can join it and
        // name its users by `bulkId`.
        while let Some(chunk) = work.pop_front() {
            for i in chunk {
                if push.stopped.is_some() {
                    break;
                }
                if push.is_done(i) {
                    continue;
                }
                let op = Operation::create_user(&bulk_id(i), &push.users[i].data);
                match packer.push(op) {
                    Ok(Some(request)) => self.send_users(push, request, &mut work).await,
                    Ok(None) => {}
                    Err(op) => push.done(i, self.too_large(op.json.len())),
                }
            }
            if !work.is_empty()
                && push.stopped.is_none()
                && let Some(request) = packer.take()
            {
                self.send_users(push, request, &mut work).await;
            }
        }
        if push.stopped.is_some() {
            return self.stopped_groups(push, groups);
        }
        self.bulk_groups(push, groups, packer).await
    }

    /// Users an earlier attempt may have created are looked up first: found by their
    /// `externalId`, they are settled as created (by that attempt) and not sent. They
    /// are asked for many at a time (`externalId eq "a" or externalId eq "b" …`); a
    /// target that refuses such filters is asked one user at a time, a few at once.
    async fn found_before(&self, push: &mut Attempt<'_>) {
        let wanted: Vec<usize> = (0..push.users.len())
            .filter(|&i| push.users[i].maybe_sent)
            .collect();
        let fresh_after = push.started - LISTING_SHARED_FOR;
        self.found_ours(push, &wanted, fresh_after).await;
    }

    /// Settles users found created by an earlier request, and reports them at once.
    fn found(&self, push: &mut Attempt<'_>, ours: Vec<(usize, String)>) {
        for (i, id) in &ours {
            push.done(*i, Outcome::Created { id: id.clone() });
        }
        if let Some(sink) = &self.found
            && !ours.is_empty()
        {
            // Nobody listening any more is no reason to stop: the report has them.
            let _ = sink.send(ours);
        }
    }

    /// The users of `indices` the target holds under their own `externalId` were
    /// created by an earlier request: settled as created, each reported as soon as
    /// its answer came. Asked for 50 at a time with `or` filters, one at a time (a few
    /// in the air) where the target refuses those. A shared listing serves only if it
    /// was asked at or after `fresh_after`: one asked before a conflict was met, or
    /// before an answer was lost, cannot know the user that request created.
    async fn found_ours(
        &self,
        push: &mut Attempt<'_>,
        indices: &[usize],
        fresh_after: chrono::DateTime<chrono::Utc>,
    ) {
        if indices.is_empty() {
            return;
        }
        // One listing of the users created since the request first left (a page per
        // thousand) costs far less than a filter per fifty users where the target
        // scans for each; refused, or holding too many, the filters are used.
        let since = indices
            .iter()
            .map(|&i| push.first_sent[i])
            .collect::<Option<Vec<_>>>()
            .and_then(|at| at.into_iter().min());
        if let Some(since) = since
            && self
                .by_listing(push, indices, since - CLOCK_SKEW, fresh_after)
                .await
        {
            return;
        }
        for chunk in indices.chunks(LOOKUPS_PER_REQUEST) {
            if push.stopped.is_some() {
                break;
            }
            let ids: Vec<&str> = chunk
                .iter()
                .map(|&i| push.users[i].external_id.as_str())
                .collect();
            push.requests += 1;
            let found = match self.client.filter_any("/Users", "externalId", &ids).await {
                Ok(found) => found,
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    push.stopped = Some(call.failure);
                    break;
                }
                // Refused (or failed): one user at a time, a few at once.
                Err(_) => self.found_one_by_one(push, chunk).await,
            };
            let ours = ours_among(push, chunk, &found);
            self.found(push, ours);
        }
    }

    /// Looks `indices` up in a listing of the users created since `since`: the one
    /// shared by this run's pushes when it covers them (from early enough, and asked
    /// at or after `fresh_after`), else a new one, kept for the others. `false` when
    /// the target refused the listing or it would hold too many users: filters then.
    async fn by_listing(
        &self,
        push: &mut Attempt<'_>,
        indices: &[usize],
        since: chrono::DateTime<chrono::Utc>,
        fresh_after: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let shared = self.listings.clone().unwrap_or_default();
        // Held while listing: the other pushes wait for this listing and use it.
        let mut listed = shared.0.lock().await;
        let covers = listed
            .as_ref()
            .is_some_and(|l| l.since <= since && l.asked >= fresh_after);
        if !covers {
            let at_most = (indices.len() * LISTED_PER_USER).max(LISTED_AT_LEAST);
            let asked = chrono::Utc::now();
            let (answer, requests) = self.client.created_since("/Users", since, at_most).await;
            push.requests += requests;
            match answer {
                Ok(Some(created)) => {
                    let ids = created
                        .iter()
                        .filter_map(|r| {
                            Some((text_of(r, "externalId")?.to_string(), resource_id(r)?))
                        })
                        .collect();
                    *listed = Some(Listed { since, asked, ids });
                }
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    push.stopped = Some(call.failure);
                    return true;
                }
                Ok(None) | Err(_) => return false,
            }
        }
        let Some(found) = listed.as_ref() else {
            return false;
        };
        let ours: Vec<(usize, String)> = indices
            .iter()
            .filter_map(|&i| Some((i, found.ids.get(&push.users[i].external_id)?.clone())))
            .collect();
        drop(listed);
        self.found(push, ours);
        true
    }

    /// The resources found by `externalId` for each of `chunk`, asked for one at a
    /// time with a few requests in the air.
    async fn found_one_by_one(&self, push: &mut Attempt<'_>, chunk: &[usize]) -> Vec<Value> {
        let mut answers = Vec::with_capacity(chunk.len());
        for group in chunk.chunks(LOOKUPS_IN_THE_AIR) {
            // Each ask owns its client (a clone shares the connections) and its id.
            let asks = group.iter().map(|&i| {
                let (client, external_id) =
                    (self.client.clone(), push.users[i].external_id.clone());
                async move { client.filter_eq("/Users", "externalId", &external_id).await }
            });
            answers.extend(futures_util::future::join_all(asks).await);
        }
        push.requests += answers.len() as u64;
        let mut found = Vec::new();
        for answer in answers {
            match answer {
                Ok(resources) => found.extend(resources),
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    push.stopped = Some(call.failure);
                }
                // Not found now: sent again, and a 409 then is settled by a look-up.
                Err(_) => {}
            }
        }
        found
    }

    fn packer(&self) -> Packer {
        Packer::new(self.limits.max_operations, self.limits.max_payload_size)
    }

    fn too_large(&self, bytes: usize) -> Outcome {
        Outcome::Failed(ScimFailure::new(
            ErrorClass::PayloadTooLarge,
            None,
            format!(
                "the user's SCIM representation is {bytes} bytes; the target accepts at most \
                 {} bytes per request",
                self.limits.max_payload_size
            ),
        ))
    }

    /// Sends a request of user creations and settles what it can; users to send again
    /// go back on `work`.
    async fn send_users(
        &self,
        push: &mut Attempt<'_>,
        request: BulkRequest,
        work: &mut VecDeque<Vec<usize>>,
    ) {
        let indices: Vec<usize> = request
            .bulk_ids
            .iter()
            .filter_map(|b| index_of(b))
            .collect();
        push.requests += 1;
        push.leaving(&indices);
        match self.client.bulk(request.body).await {
            Ok(answer) => match parse_response(&answer.body) {
                Ok(results) => self.settle_users(push, &indices, results, work).await,
                Err(reason) => {
                    let failure =
                        ScimFailure::new(ErrorClass::Protocol, Some(answer.status), reason);
                    self.recover(push, &indices, &failure, work).await;
                }
            },
            Err(failure) => self.request_failed(push, indices, failure, work).await,
        }
    }

    async fn request_failed(
        &self,
        push: &mut Attempt<'_>,
        indices: Vec<usize>,
        failure: CallFailure,
        work: &mut VecDeque<Vec<usize>>,
    ) {
        match failure.class() {
            ErrorClass::Unauthorized => push.stopped = Some(failure.failure),
            // Too large as a whole (the target counts differently, or a proxy in front
            // has a lower limit): halves, down to single operations.
            ErrorClass::PayloadTooLarge | ErrorClass::InvalidData if indices.len() > 1 => {
                let (a, b) = indices.split_at(indices.len() / 2);
                work.push_front(b.to_vec());
                work.push_front(a.to_vec());
            }
            ErrorClass::Throttled => {
                // Not processed: the same users go again after the wait.
                let attempt = indices.iter().map(|&i| push.attempts[i]).max().unwrap_or(0) + 1;
                if attempt >= self.client.retry.attempts {
                    for &i in &indices {
                        push.done(i, Outcome::Failed(failure.failure.clone()));
                    }
                    return;
                }
                for &i in &indices {
                    push.attempts[i] = attempt;
                }
                push.retries += 1;
                // Stopped while waiting: the users stay unsettled, to be given back.
                if self
                    .wait(push, self.client.retry.delay(attempt, failure.retry_after))
                    .await
                {
                    work.push_front(indices);
                }
            }
            ErrorClass::Network | ErrorClass::ServerError | ErrorClass::Protocol => {
                self.recover(push, &indices, &failure.failure, work).await;
            }
            _ => {
                for &i in &indices {
                    push.done(i, Outcome::Failed(failure.failure.clone()));
                }
            }
        }
    }

    async fn settle_users(
        &self,
        push: &mut Attempt<'_>,
        indices: &[usize],
        mut results: HashMap<String, OpResult>,
        work: &mut VecDeque<Vec<usize>>,
    ) {
        let mut unsure = Vec::new();
        let mut throttled: Option<ScimFailure> = None;
        let mut again = Vec::new();
        let mut not_yet_found: Option<(Vec<usize>, ScimFailure)> = None;
        let mut conflicts = Vec::new();
        for &i in indices {
            match results.remove(&bulk_id(i)) {
                Some(OpResult::Done { id: Some(id), .. }) => push.done(i, Outcome::Created { id }),
                // Created, but the answer named no id: find it.
                Some(OpResult::Done { id: None, .. }) => unsure.push(i),
                Some(OpResult::Failed(failure)) => match failure.class {
                    ErrorClass::AlreadyExists => conflicts.push((i, failure)),
                    ErrorClass::Unauthorized => push.stopped = Some(failure),
                    ErrorClass::Throttled => {
                        again.push(i);
                        throttled = Some(failure);
                    }
                    ErrorClass::Network | ErrorClass::ServerError | ErrorClass::Protocol => {
                        unsure.push(i)
                    }
                    _ => push.done(i, Outcome::Failed(failure)),
                },
                // The target did not say: it may or may not have created the user.
                None => unsure.push(i),
            }
        }
        // A conflict for a user an earlier request may have carried is most often that
        // request's own doing (it reached the target late): all such users are found
        // together, and only the others are looked up one by one.
        let maybe_ours: Vec<usize> = conflicts
            .iter()
            .map(|(i, _)| *i)
            .filter(|&i| push.sent[i])
            .collect();
        // Asked after these answers came: such a user was in the target by then.
        self.found_ours(push, &maybe_ours, chrono::Utc::now()).await;
        for (i, failure) in conflicts {
            if push.is_done(i) {
                continue;
            }
            match self.on_conflict(push, i, &failure).await {
                Some(outcome) => push.done(i, outcome),
                None => not_yet_found
                    .get_or_insert_with(|| (Vec::new(), failure.clone()))
                    .0
                    .push(i),
            }
        }
        if !unsure.is_empty() {
            let failure = ScimFailure::new(
                ErrorClass::Protocol,
                None,
                "the bulk answer did not report this operation",
            );
            self.recover(push, &unsure, &failure, work).await;
        }
        if let Some((indices, failure)) = not_yet_found {
            self.retry_later(push, &indices, &not_found_after_conflict(failure), work)
                .await;
        }
        if let Some(failure) = throttled {
            let call = CallFailure {
                failure,
                retry_after: None,
            };
            self.request_failed(push, again, call, work).await;
        }
    }

    /// After a lost or unclear answer: users found by `externalId` were created (by the
    /// request whose answer was lost); the others are sent again, a limited number of
    /// times.
    async fn recover(
        &self,
        push: &mut Attempt<'_>,
        indices: &[usize],
        cause: &ScimFailure,
        work: &mut VecDeque<Vec<usize>>,
    ) {
        for &i in indices {
            // The request reached the target or may have: from now on a 409 for this
            // user may answer it.
            push.sent[i] = true;
        }
        // Found by their externalId, the users were created by the request whose
        // answer was lost; the others go again (a stranger holding a user name then
        // meets 409 and the policy).
        self.found_ours(push, indices, chrono::Utc::now()).await;
        let again: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| !push.is_done(i))
            .collect();
        if push.stopped.is_some() {
            return;
        }
        self.retry_later(push, &again, cause, work).await;
    }

    /// Counts an attempt for each user and sends them again after a pause; a user out
    /// of attempts fails with `cause`.
    async fn retry_later(
        &self,
        push: &mut Attempt<'_>,
        indices: &[usize],
        cause: &ScimFailure,
        work: &mut VecDeque<Vec<usize>>,
    ) {
        let mut again = Vec::new();
        let mut attempt = 0;
        for &i in indices {
            push.attempts[i] += 1;
            attempt = attempt.max(push.attempts[i]);
            if push.attempts[i] >= self.client.retry.attempts {
                push.done(i, Outcome::Failed(cause.clone()));
            } else {
                again.push(i);
            }
        }
        if !again.is_empty() {
            push.retries += 1;
            if self
                .wait(push, self.client.retry.delay(attempt, None))
                .await
            {
                work.push_front(again);
            }
        }
    }

    /// Looks a user up by `externalId` (then `userName`). Only a resource whose
    /// attribute equals what was searched counts: a target that applies filters
    /// loosely (or ignores them) must not have a stranger taken for this user.
    async fn lookup(&self, push: &mut Attempt<'_>, i: usize) -> Result<Option<Found>, CallFailure> {
        let user = &push.users[i];
        let by_external = self
            .client
            .filter_eq("/Users", "externalId", &user.external_id)
            .await;
        let by_external = match by_external {
            Ok(found) => found,
            Err(failure) if failure.class() == ErrorClass::Unauthorized => {
                push.stopped = Some(failure.failure.clone());
                return Err(failure);
            }
            Err(failure) => return Err(failure),
        };
        if let Some(found) = by_external
            .into_iter()
            .find(|r| text_of(r, "externalId") == Some(user.external_id.as_str()))
            && let Some(id) = resource_id(&found)
        {
            return Ok(Some(Found::Ours {
                id,
                resource: found,
            }));
        }
        let by_name = self
            .client
            .filter_eq("/Users", "userName", &user.user_name)
            .await?;
        // SCIM compares userName without case (RFC 7643 §4.1.1).
        let found = by_name.into_iter().find(|r| {
            text_of(r, "userName").is_some_and(|n| n.eq_ignore_ascii_case(&user.user_name))
        });
        Ok(found.and_then(|resource| {
            let id = resource_id(&resource)?;
            // The target did not find it by externalId, yet it carries ours: it is.
            Some(
                if text_of(&resource, "externalId") == Some(user.external_id.as_str()) {
                    Found::Ours { id, resource }
                } else {
                    Found::Other { id }
                },
            )
        }))
    }

    /// A 409 for user `i`: settled by what a lookup finds. `None` when the user may be
    /// this push's own (an earlier request of it may have reached the target) and is
    /// not found yet: it is tried again later, never settled by the policy as though
    /// it were someone else's.
    async fn on_conflict(
        &self,
        push: &mut Attempt<'_>,
        i: usize,
        failure: &ScimFailure,
    ) -> Option<Outcome> {
        let found = match self.lookup(push, i).await {
            Ok(found) => found,
            Err(call) if push.sent[i] && call.class().retryable() => return None,
            Err(call) => return Some(Outcome::Failed(call.failure)),
        };
        match found {
            Some(Found::Ours { id, .. }) if push.sent[i] => Some(Outcome::Created { id }),
            None if push.sent[i] => None,
            found => Some(self.apply_policy_to(push, i, failure.clone(), found).await),
        }
    }

    /// The project's policy for a user that exists and is not this push's own. Only an
    /// account proven to be the same legacy user (its `externalId` is this user's) is
    /// ever updated, and then never its password or status.
    async fn apply_policy_to(
        &self,
        push: &mut Attempt<'_>,
        i: usize,
        failure: ScimFailure,
        found: Option<Found>,
    ) -> Outcome {
        let (id, proven) = match found {
            Some(Found::Ours { id, resource }) => (id, Some(resource)),
            Some(Found::Other { id }) => (id, None),
            None => {
                return Outcome::Failed(ScimFailure {
                    detail: format!(
                        "{} (no user with this userName or externalId was found: another \
                         unique attribute collides)",
                        failure.detail
                    ),
                    ..failure
                });
            }
        };
        match (self.policy, proven) {
            (ExistingPolicy::Skip, _) => Outcome::Skipped { id },
            (ExistingPolicy::Fail, _) => Outcome::Failed(ScimFailure {
                detail: format!("{} (existing user {id})", failure.detail),
                ..failure
            }),
            (ExistingPolicy::Update, None) => Outcome::Failed(ScimFailure {
                detail: format!(
                    "{} (existing user {id} has this userName but was not made from this \
                     legacy user: its externalId differs, so it is not updated)",
                    failure.detail
                ),
                ..failure
            }),
            (ExistingPolicy::Update, Some(existing)) => {
                let ops = update_operations(&existing, &push.users[i].data);
                let changed: Vec<String> = ops
                    .iter()
                    .filter_map(|op| op.get("path").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
                if ops.is_empty() {
                    return Outcome::Updated { id, changed };
                }
                push.requests += 1;
                match self.client.patch(&format!("/Users/{id}"), ops).await {
                    Ok(()) => Outcome::Updated { id, changed },
                    Err(call) => Outcome::Failed(call.failure),
                }
            }
        }
    }

    // ---- groups ------------------------------------------------------------------

    /// Groups join the last user request when they fit, naming its users by `bulkId`
    /// (inside `members`, the one place WSO2 resolves them); users of earlier requests
    /// are named by their SCIM ids.
    async fn bulk_groups(
        &self,
        push: &mut Attempt<'_>,
        groups: &[GroupPush],
        mut packer: Packer,
    ) -> Vec<Outcome> {
        let mut tail = Tail {
            outcomes: vec![None; groups.len()],
            work: VecDeque::new(),
            deferred: Vec::new(),
        };
        let mut open: Vec<usize> = Vec::new(); // group indices in the open request
        let mut open_users: Vec<usize> = Vec::new(); // user indices in the open request
        let mut existing = Vec::new();
        // The users already packed but not sent.
        let mut in_request: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for b in packer.bulk_ids() {
            if let Some(i) = index_of(b) {
                in_request.insert(i);
                open_users.push(i);
            }
        }
        for (g, group) in groups.iter().enumerate() {
            // Group names need not be unique to every target (they are not to the
            // RFC), so an existing group is looked for first: a repeat never makes a
            // second one.
            match self
                .client
                .filter_eq("/Groups", "displayName", &group.display_name)
                .await
            {
                Ok(found) if named_group(&found, &group.display_name).is_some() => {
                    // Settled once its new members have their ids.
                    existing.push(g);
                    continue;
                }
                Ok(_) => {}
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    push.stopped = Some(call.failure);
                    break;
                }
                Err(call) => {
                    tail.outcomes[g] = Some(Outcome::Failed(call.failure));
                    continue;
                }
            }
            let mut op = self.group_op(push, g, group, &in_request);
            if !packer.fits(op.json.len()) {
                if let Some(request) = packer.take() {
                    let open = (open_users.as_slice(), open.as_slice());
                    self.send_mixed(push, request, open, groups, &mut tail)
                        .await;
                }
                in_request.clear();
                open_users.clear();
                open.clear();
                op = self.group_op(push, g, group, &in_request);
            }
            match packer.push(op) {
                Ok(_) => open.push(g),
                Err(op) => tail.outcomes[g] = Some(self.too_large(op.json.len())),
            }
        }
        if let Some(request) = packer.take() {
            let open = (open_users.as_slice(), open.as_slice());
            self.send_mixed(push, request, open, groups, &mut tail)
                .await;
        }
        let Tail {
            mut outcomes,
            mut work,
            deferred,
        } = tail;
        // Users of the last request that must go again go alone, as before.
        while let Some(chunk) = work.pop_front() {
            if push.stopped.is_some() {
                break;
            }
            let mut packer = self.packer();
            for i in chunk {
                let op = Operation::create_user(&bulk_id(i), &push.users[i].data);
                match packer.push(op) {
                    Ok(Some(request)) => self.send_users(push, request, &mut work).await,
                    Ok(None) => {}
                    Err(op) => push.done(i, self.too_large(op.json.len())),
                }
            }
            if let Some(request) = packer.take() {
                self.send_users(push, request, &mut work).await;
            }
        }
        for g in deferred {
            if push.stopped.is_some() {
                break;
            }
            outcomes[g] = Some(self.group_single(push, &groups[g]).await);
        }
        for g in existing {
            if push.stopped.is_some() {
                break;
            }
            let failure = ScimFailure::new(ErrorClass::AlreadyExists, None, "the group exists");
            outcomes[g] = Some(self.resolve_group(push, &groups[g], failure).await);
        }
        let stopped = push.stopped.clone();
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Outcome::Failed(stopped.clone().unwrap_or_else(|| {
                        ScimFailure::new(ErrorClass::Protocol, None, "the group was never sent")
                    }))
                })
            })
            .collect()
    }

    fn group_op(
        &self,
        push: &Attempt<'_>,
        g: usize,
        group: &GroupPush,
        in_request: &std::collections::HashSet<usize>,
    ) -> Operation {
        let members: Vec<Member> = group
            .members
            .iter()
            .filter_map(|&i| {
                if in_request.contains(&i) {
                    Some(Member::BulkId(bulk_id(i)))
                } else {
                    push.scim_id(i).map(|id| Member::Id(id.to_string()))
                }
            })
            .collect();
        Operation::create_group(&format!("g{g}"), &group.display_name, &members)
    }

    /// Sends the last request (users and groups). Throttling is waited out for the
    /// whole request; any other failure is settled in parts: the users as in
    /// `request_failed`, the groups one by one once the users are settled (`deferred`).
    async fn send_mixed(
        &self,
        push: &mut Attempt<'_>,
        request: BulkRequest,
        open: (&[usize], &[usize]),
        groups: &[GroupPush],
        tail: &mut Tail,
    ) {
        let (users, group_indices) = open;
        let Tail {
            outcomes,
            work,
            deferred,
        } = tail;
        let mut attempt = 0;
        push.leaving(users);
        let answer = loop {
            push.requests += 1;
            match self.client.bulk(request.body.clone()).await {
                Err(f)
                    if f.class() == ErrorClass::Throttled
                        && attempt + 1 < self.client.retry.attempts =>
                {
                    attempt += 1;
                    push.retries += 1;
                    if !self
                        .wait(push, self.client.retry.delay(attempt, f.retry_after))
                        .await
                    {
                        break Err(f);
                    }
                }
                other => break other,
            }
        };
        let mut results = match answer.map(|a| (a.status, parse_response(&a.body))) {
            Ok((_, Ok(results))) => results,
            Ok((status, Err(reason))) => {
                let failure = ScimFailure::new(ErrorClass::Protocol, Some(status), reason);
                self.recover(push, users, &failure, work).await;
                deferred.extend_from_slice(group_indices);
                return;
            }
            Err(failure) => {
                if failure.class() == ErrorClass::Unauthorized {
                    push.stopped = Some(failure.failure);
                    return;
                }
                if !users.is_empty() {
                    self.request_failed(push, users.to_vec(), failure.clone(), work)
                        .await;
                }
                if failure.class().retryable()
                    || matches!(
                        failure.class(),
                        ErrorClass::PayloadTooLarge | ErrorClass::Protocol
                    )
                    || group_indices.len() > 1
                {
                    deferred.extend_from_slice(group_indices);
                } else {
                    for &g in group_indices {
                        outcomes[g] = Some(Outcome::Failed(failure.failure.clone()));
                    }
                }
                return;
            }
        };
        let user_results: HashMap<String, OpResult> = users
            .iter()
            .filter_map(|&i| results.remove_entry(&bulk_id(i)))
            .collect();
        self.settle_users(push, users, user_results, work).await;
        for &g in group_indices {
            match results.remove(&format!("g{g}")) {
                Some(OpResult::Done { id: Some(id), .. }) => {
                    outcomes[g] = Some(Outcome::Created { id })
                }
                Some(OpResult::Failed(f)) if f.class == ErrorClass::AlreadyExists => {
                    outcomes[g] = Some(self.resolve_group(push, &groups[g], f).await)
                }
                Some(OpResult::Failed(f)) if !f.class.retryable() => {
                    outcomes[g] = Some(Outcome::Failed(f))
                }
                // No id, no word, or a passing trouble: looked up (and created if
                // absent) once the users are settled.
                _ => deferred.push(g),
            }
        }
    }

    fn stopped_groups(&self, push: &Attempt<'_>, groups: &[GroupPush]) -> Vec<Outcome> {
        let failure = push
            .stopped
            .clone()
            .unwrap_or_else(|| ScimFailure::new(ErrorClass::Unauthorized, None, "the run stopped"));
        groups
            .iter()
            .map(|_| Outcome::Failed(failure.clone()))
            .collect()
    }

    async fn groups_single(&self, push: &Attempt<'_>, groups: &[GroupPush]) -> Vec<Outcome> {
        if push.stopped.is_some() {
            return self.stopped_groups(push, groups);
        }
        let mut outcomes = Vec::with_capacity(groups.len());
        for group in groups {
            outcomes.push(self.group_single(push, group).await);
        }
        outcomes
    }

    /// A group by itself: found by `displayName` first (so a repeat creates nothing),
    /// else created with its members by SCIM id.
    async fn group_single(&self, push: &Attempt<'_>, group: &GroupPush) -> Outcome {
        match self
            .client
            .filter_eq("/Groups", "displayName", &group.display_name)
            .await
        {
            Ok(found) if named_group(&found, &group.display_name).is_some() => {
                let failure =
                    ScimFailure::new(ErrorClass::AlreadyExists, Some(409), "the group exists");
                return self.resolve_group(push, group, failure).await;
            }
            Ok(_) => {}
            Err(call) => return Outcome::Failed(call.failure),
        }
        let members = created_members(push, group);
        let resource = serde_json::json!({
            "schemas": [domain::scim::urn::GROUP],
            "displayName": group.display_name,
            "members": members,
        });
        match self.client.create("/Groups", &resource).await {
            Ok(created) => match resource_id(&created) {
                Some(id) => Outcome::Created { id },
                None => Outcome::Failed(ScimFailure::new(
                    ErrorClass::Protocol,
                    Some(201),
                    "the created group came back without an id",
                )),
            },
            Err(call) => Outcome::Failed(call.failure),
        }
    }

    /// A group that exists: skip, fail, or (update) add the members it lacks.
    async fn resolve_group(
        &self,
        push: &Attempt<'_>,
        group: &GroupPush,
        failure: ScimFailure,
    ) -> Outcome {
        let found = match self
            .client
            .filter_eq("/Groups", "displayName", &group.display_name)
            .await
        {
            Ok(found) => found,
            Err(call) => return Outcome::Failed(call.failure),
        };
        let Some(id) = named_group(&found, &group.display_name) else {
            return Outcome::Failed(failure);
        };
        match self.policy {
            ExistingPolicy::Skip => Outcome::Skipped { id },
            ExistingPolicy::Fail => Outcome::Failed(ScimFailure {
                detail: format!("{} (existing group {id})", failure.detail),
                ..failure
            }),
            ExistingPolicy::Update => {
                let members = created_members(push, group);
                if members.is_empty() {
                    return Outcome::Updated {
                        id,
                        changed: Vec::new(),
                    };
                }
                let op = serde_json::json!({ "op": "add", "path": "members", "value": members });
                match self.client.patch(&format!("/Groups/{id}"), vec![op]).await {
                    Ok(()) => Outcome::Updated {
                        id,
                        changed: vec!["members".into()],
                    },
                    Err(call) => Outcome::Failed(call.failure),
                }
            }
        }
    }

    /// Makes sure a group exists with these members (SCIM ids), for a run whose users
    /// were sent in many requests: found by `displayName` (so a repeat after a crash
    /// creates nothing) and given the members by `PATCH add`, or created with them.
    /// An existing group fails only when the policy is to fail; otherwise the members
    /// join it. Returns the outcome and the members added.
    pub async fn sync_group(&self, name: &str, members: &[String]) -> (Outcome, u64) {
        const PER_REQUEST: usize = 500;
        let values = |ids: &[String]| -> Vec<Value> {
            ids.iter()
                .map(|id| serde_json::json!({ "value": id }))
                .collect()
        };
        let found = match self.client.filter_eq("/Groups", "displayName", name).await {
            Ok(found) => found,
            Err(call) => return (Outcome::Failed(call.failure), 0),
        };
        let (outcome, rest) = match named_group(&found, name) {
            Some(id) if self.policy == ExistingPolicy::Fail => {
                let failure = ScimFailure::new(
                    ErrorClass::AlreadyExists,
                    Some(409),
                    format!("the group exists (existing group {id}) and the policy is to fail"),
                );
                return (Outcome::Failed(failure), 0);
            }
            Some(id) => (
                Outcome::Updated {
                    id,
                    changed: vec!["members".into()],
                },
                members,
            ),
            None => {
                let first = &members[..members.len().min(PER_REQUEST)];
                let resource = serde_json::json!({
                    "schemas": [domain::scim::urn::GROUP],
                    "displayName": name,
                    "members": values(first),
                });
                match self.client.create("/Groups", &resource).await {
                    Ok(created) => match resource_id(&created) {
                        Some(id) => (Outcome::Created { id }, &members[first.len()..]),
                        None => {
                            let failure = ScimFailure::new(
                                ErrorClass::Protocol,
                                Some(201),
                                "the created group came back without an id",
                            );
                            return (Outcome::Failed(failure), 0);
                        }
                    },
                    Err(call) => return (Outcome::Failed(call.failure), 0),
                }
            }
        };
        let Some(id) = outcome.scim_id().map(str::to_string) else {
            return (outcome, 0);
        };
        let mut added = (members.len() - rest.len()) as u64;
        for chunk in rest.chunks(PER_REQUEST) {
            let op = serde_json::json!({ "op": "add", "path": "members", "value": values(chunk) });
            if let Err(call) = self.client.patch(&format!("/Groups/{id}"), vec![op]).await {
                return (Outcome::Failed(call.failure), added);
            }
            added += chunk.len() as u64;
        }
        (outcome, added)
    }

    // ---- without bulk ------------------------------------------------------------

    /// One `POST /Users` per user, for targets without bulk support.
    async fn push_single(&self, push: &mut Attempt<'_>) {
        for i in 0..push.users.len() {
            while !push.is_done(i) {
                if let Some(failure) = &push.stopped {
                    let failure = failure.clone();
                    push.done(i, Outcome::Failed(failure));
                    break;
                }
                push.requests += 1;
                let result = self.client.create("/Users", &push.users[i].data).await;
                match result {
                    Ok(created) => match resource_id(&created) {
                        Some(id) => push.done(i, Outcome::Created { id }),
                        None => self.single_unsure(push, i).await,
                    },
                    Err(call) => match call.class() {
                        ErrorClass::AlreadyExists => {
                            match self.on_conflict(push, i, &call.failure).await {
                                Some(outcome) => push.done(i, outcome),
                                None => {
                                    push.attempts[i] += 1;
                                    if push.attempts[i] >= self.client.retry.attempts {
                                        let failure = not_found_after_conflict(call.failure);
                                        push.done(i, Outcome::Failed(failure));
                                    } else {
                                        push.retries += 1;
                                        let wait = self.client.retry.delay(push.attempts[i], None);
                                        self.wait(push, wait).await;
                                    }
                                }
                            }
                        }
                        ErrorClass::Unauthorized => push.stopped = Some(call.failure),
                        ErrorClass::Throttled => {
                            push.attempts[i] += 1;
                            if push.attempts[i] >= self.client.retry.attempts {
                                push.done(i, Outcome::Failed(call.failure));
                            } else {
                                push.retries += 1;
                                let wait =
                                    self.client.retry.delay(push.attempts[i], call.retry_after);
                                self.wait(push, wait).await;
                            }
                        }
                        ErrorClass::Network | ErrorClass::ServerError | ErrorClass::Protocol => {
                            push.sent[i] = true;
                            match self.lookup(push, i).await {
                                Ok(Some(Found::Ours { id, .. })) => {
                                    push.done(i, Outcome::Created { id })
                                }
                                _ => {
                                    push.attempts[i] += 1;
                                    if push.attempts[i] >= self.client.retry.attempts {
                                        push.done(i, Outcome::Failed(call.failure));
                                    } else {
                                        push.retries += 1;
                                        let wait = self.client.retry.delay(push.attempts[i], None);
                                        self.wait(push, wait).await;
                                    }
                                }
                            }
                        }
                        _ => push.done(i, Outcome::Failed(call.failure)),
                    },
                }
            }
        }
    }

    async fn single_unsure(&self, push: &mut Attempt<'_>, i: usize) {
        // Only the user with this externalId is the one just created.
        let outcome = match self.lookup(push, i).await {
            Ok(Some(Found::Ours { id, .. })) => Outcome::Created { id },
            _ => Outcome::Failed(ScimFailure::new(
                ErrorClass::Protocol,
                Some(201),
                "the created user came back without an id and cannot be found",
            )),
        };
        push.done(i, outcome);
    }
}

/// The groups' side of the last request: their outcomes so far, users to send again,
/// groups to settle one by one after the users.
struct Tail {
    outcomes: Vec<Option<Outcome>>,
    work: VecDeque<Vec<usize>>,
    deferred: Vec<usize>,
}

/// Users asked for in one look-up request after a crash: a filter of this many `or`
/// terms stays a few kilobytes of URL, well inside what servers and proxies accept.
const LOOKUPS_PER_REQUEST: usize = 50;

/// A listing of users created since a batch left is used while it holds at most this
/// many users per user looked for, or [`LISTED_AT_LEAST`]: a page of a listing costs
/// the target about what one filter of [`LOOKUPS_PER_REQUEST`] terms does, and is
/// shared by every batch taken up after a restart.
const LISTED_PER_USER: usize = 20;
const LISTED_AT_LEAST: usize = 20_000;

/// How far the target's clock may be behind Ferry's: a listing starts this much
/// before the batch left. A user it misses is sent again, and the 409 then settled by
/// a look-up.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(10);
/// A listing serves the pushes that began up to this long after it was asked: the
/// batches workers take up together after a restart, whose earlier requests ended
/// with the process that sent them. A user a request created later than the listing
/// is sent again, and the 409 then settled by a look-up.
const LISTING_SHARED_FOR: chrono::Duration = chrono::Duration::seconds(5);
/// Single look-ups in the air at once, for a target that refuses `or` filters.
const LOOKUPS_IN_THE_AIR: usize = 4;

/// The detail of users left unsettled because the run stopped during a wait.
pub const INTERRUPTED: &str = "the run stopped while waiting to send again";

/// A user found by a lookup: one carrying this legacy user's `externalId` (with the
/// resource as the target holds it), or another account with the same `userName`.
enum Found {
    Ours { id: String, resource: Value },
    Other { id: String },
}

/// The failure of a user that met 409 after a request of its own may have reached
/// the target, and that could not be found by its `externalId` in every attempt.
fn not_found_after_conflict(failure: ScimFailure) -> ScimFailure {
    ScimFailure {
        detail: format!(
            "{} (an earlier request for this user may have created it, but no user with \
             its externalId can be found)",
            failure.detail
        ),
        ..failure
    }
}

/// Those of `indices` found in `resources` under their own `externalId`, with their
/// SCIM ids.
fn ours_among(push: &Attempt<'_>, indices: &[usize], resources: &[Value]) -> Vec<(usize, String)> {
    let by_external: HashMap<&str, &Value> = resources
        .iter()
        .filter_map(|r| Some((text_of(r, "externalId")?, r)))
        .collect();
    indices
        .iter()
        .filter_map(|&i| {
            let resource = by_external.get(push.users[i].external_id.as_str())?;
            Some((i, resource_id(resource)?))
        })
        .collect()
}

fn text_of<'a>(resource: &'a Value, attribute: &str) -> Option<&'a str> {
    resource.get(attribute).and_then(Value::as_str)
}

/// The id of the group among `found` whose `displayName` is `name` (groups compare
/// as the RFC's `caseExact: false` says).
fn named_group(found: &[Value], name: &str) -> Option<String> {
    found
        .iter()
        .find(|g| text_of(g, "displayName").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(resource_id)
}

/// Attributes an update never touches: the account's credentials and status belong
/// to its holder (and to the target), and its identity to the target.
const NEVER_UPDATED: &[&str] = &[
    "schemas",
    "id",
    "meta",
    "externalId",
    "password",
    "active",
    "askPassword",
    "verifyEmail",
    "forcePasswordReset",
    "accountLocked",
    "accountDisabled",
    "accountState",
    "oneTimePassword",
    "isMigrated",
    "is_migrated",
];

/// The PATCH operations that bring `existing` to what the mapping makes of the user:
/// one `replace` per attribute (an extension's per sub-attribute) whose value
/// differs, credentials and status never among them.
fn update_operations(existing: &Value, mapped: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    let Some(mapped) = mapped.as_object() else {
        return ops;
    };
    let never = |name: &str| NEVER_UPDATED.iter().any(|n| n.eq_ignore_ascii_case(name));
    for (name, value) in mapped {
        if never(name) {
            continue;
        }
        if name.starts_with("urn:")
            && let Some(extension) = value.as_object()
        {
            for (sub, value) in extension {
                if never(sub) || existing.get(name).and_then(|e| e.get(sub)) == Some(value) {
                    continue;
                }
                ops.push(serde_json::json!({
                    "op": "replace",
                    "path": format!("{name}:{sub}"),
                    "value": value,
                }));
            }
            continue;
        }
        if existing.get(name) != Some(value) {
            ops.push(serde_json::json!({ "op": "replace", "path": name, "value": value }));
        }
    }
    ops
}

/// A group's members that have SCIM ids, as `members` values.
fn created_members(push: &Attempt<'_>, group: &GroupPush) -> Vec<Value> {
    group
        .members
        .iter()
        .filter_map(|&i| push.scim_id(i))
        .map(|id| serde_json::json!({ "value": id }))
        .collect()
}

fn resource_id(resource: &Value) -> Option<String> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}
