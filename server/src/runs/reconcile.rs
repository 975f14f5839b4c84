//! A reconciliation's batch: each user a production run put in the target is read
//! back by its SCIM id and compared with what the current mapping makes of its record
//! (the attributes Ferry sends, not what the server manages: `id`, `meta`, the
//! password, groups). A user the target holds as sent is settled `skipped` with the
//! class `matches`; one it holds otherwise fails as `differs_in_target`, naming the
//! attributes (never their values); one it no longer has fails as `missing_in_target`.
//! Failures go to the review queue like any run's, where a retry puts them right.
//!
//! Users are asked for 50 at a time (`id eq "a" or id eq "b" …`); a user such a
//! filter does not return is asked for alone before it is called gone. A target that
//! refuses the filter, or answers it with users it was not asked for, is asked one
//! user at a time (a few at once) for the rest of the run.

use super::*;
use futures_util::StreamExt;
use std::sync::atomic::Ordering;

/// Requests of a batch in the air at once.
const READS_AT_ONCE: usize = 8;
/// Users asked for in one filter.
const USERS_PER_FILTER: usize = 50;

/// What the target answered for one user.
type Read = Result<serde_json::Value, crate::scim::client::CallFailure>;

/// What a record of the batch should look like in the target, or why it cannot say.
enum Expected {
    Resource(serde_json::Value),
    Settle(Settled),
}

/// Opens a record and maps it with the run's mapping, without the password's part
/// (the password is never read back).
fn expected(
    vault: &Vault,
    context: &Context,
    claimed: &Claimed,
    sealed: Option<&Vec<u8>>,
) -> Expected {
    let user = match super::workers::open_claimed(vault, context, claimed, sealed) {
        Ok(user) => user,
        Err(failed) => return Expected::Settle(*failed),
    };
    let mapped = context.mapping.map(&user);
    if !mapped.failures.is_empty() {
        return Expected::Settle(super::workers::mapping_failed(
            claimed.seq,
            &mapped.failures,
        ));
    }
    Expected::Resource(mapped.resource)
}

/// The attributes that differ, by path, at most a few named.
fn differing(paths: &[String]) -> String {
    const NAMED: usize = 8;
    let mut words = paths
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > NAMED {
        words.push_str(&format!(" and {} more", paths.len() - NAMED));
    }
    format!("the target holds other values for {words} than the mapping makes of the record")
}

/// Reads the users of a batch that have something to compare: by filters of 50 while
/// the target takes them, else one at a time.
async fn read_all(
    context: &Context,
    expected: Vec<(u64, Option<String>, Expected)>,
) -> Vec<(u64, Option<String>, Expected, Option<Read>)> {
    let client = &context.client;
    let (asked, rest): (Vec<_>, Vec<_>) = expected
        .into_iter()
        .partition(|(_, id, e)| id.is_some() && matches!(e, Expected::Resource(_)));
    let mut out: Vec<_> = rest
        .into_iter()
        .map(|(seq, id, e)| (seq, id, e, None))
        .collect();
    let chunks: Vec<Vec<(u64, Option<String>, Expected)>> = {
        let mut chunks = Vec::new();
        let mut asked = asked.into_iter().peekable();
        while asked.peek().is_some() {
            chunks.push(asked.by_ref().take(USERS_PER_FILTER).collect());
        }
        chunks
    };
    let read = futures_util::stream::iter(chunks)
        .map(|chunk| async move {
            let ids: Vec<&str> = chunk
                .iter()
                .filter_map(|(_, id, _)| id.as_deref())
                .collect();
            let mut found: HashMap<String, serde_json::Value> = HashMap::new();
            let mut by_filter = context.by_filter.load(Ordering::Relaxed);
            if by_filter {
                match client.filter_any("/Users", "id", &ids).await {
                    Ok(resources) => {
                        let asked: std::collections::HashSet<&str> = ids.iter().copied().collect();
                        for r in resources {
                            match r.get("id").and_then(|v| v.as_str()) {
                                Some(id) if asked.contains(id) => {
                                    found.insert(id.to_string(), r);
                                }
                                // A user it was not asked for: the filter is not
                                // to be trusted with who is missing.
                                _ => by_filter = false,
                            }
                        }
                    }
                    Err(call) if call.class() == ErrorClass::Unauthorized => {
                        return chunk
                            .into_iter()
                            .map(|(seq, id, e)| (seq, id, e, Some(Err(call.clone()))))
                            .collect::<Vec<_>>();
                    }
                    Err(_) => by_filter = false,
                }
                if !by_filter {
                    context.by_filter.store(false, Ordering::Relaxed);
                    found.clear();
                }
            }
            let mut answered = Vec::with_capacity(chunk.len());
            let mut alone = Vec::new();
            for (seq, id, e) in chunk {
                match id.as_deref().and_then(|id| found.remove(id)) {
                    Some(resource) => answered.push((seq, id, e, Some(Ok(resource)))),
                    // Not returned (or no filter): asked for alone, a 404 then says gone.
                    None => alone.push((seq, id, e)),
                }
            }
            let one_by_one = futures_util::stream::iter(alone)
                .map(|(seq, id, e)| async move {
                    let read = client
                        .get(&format!("/Users/{}", id.as_deref().unwrap_or_default()))
                        .await;
                    (seq, id, e, Some(read))
                })
                .buffer_unordered(READS_AT_ONCE)
                .collect::<Vec<_>>()
                .await;
            answered.extend(one_by_one);
            answered
        })
        .buffer_unordered(READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    out.extend(read.into_iter().flatten());
    out
}

/// Users a listing asks for at once.
const LISTED_PER_PAGE: u64 = 1_000;
/// Users a listing reads at most (a target that keeps answering pages is stopped).
const LISTED_AT_MOST: u64 = 20_000_000;

/// Users named in a finding's detail, at most.
const GROUPS_NAMED: usize = 6;

fn names(groups: &[&str]) -> String {
    let mut words = groups
        .iter()
        .take(GROUPS_NAMED)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if groups.len() > GROUPS_NAMED {
        words.push_str(&format!(" and {} more", groups.len() - GROUPS_NAMED));
    }
    words
}

impl Inner {
    /// Compares the users' group memberships with the groups their records name:
    /// each group read from the target by its name with its members; a user missing
    /// from a group of its record, or in one the records name that its record does
    /// not, becomes a finding (`groups_differ_in_target`) in place of a match.
    pub(super) async fn group_check(
        &self,
        context: &Context,
    ) -> domain::Result<domain::runs::GroupCheck> {
        use std::collections::{BTreeMap, BTreeSet, HashSet};
        let run = &context.run;
        let mut check = domain::runs::GroupCheck::default();
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.memberships(run.id, after, PAGE).await?;
            let Some((last, ..)) = page.last() else { break };
            after = Some(*last);
            let full = page.len() == PAGE as usize;
            rows.extend(page);
            if !full {
                break;
            }
        }
        if rows.is_empty() {
            return Ok(check);
        }
        let mut expected: Vec<(u64, String, BTreeSet<String>)> = Vec::with_capacity(rows.len());
        let mut named: BTreeSet<String> = BTreeSet::new();
        for (seq, scim_id, member_of) in rows {
            let groups: BTreeSet<String> = member_of
                .lines()
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect();
            named.extend(groups.iter().cloned());
            expected.push((seq, scim_id, groups));
        }
        // Each group the records name, with its members' ids as the target holds them.
        let mut members: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for name in &named {
            match context
                .client
                .filter_eq("/Groups", "displayName", name)
                .await
            {
                Ok(found) => match found.into_iter().next() {
                    Some(group) => {
                        check.compared += 1;
                        let ids = group
                            .get("members")
                            .and_then(|m| m.as_array())
                            .map(|m| {
                                m.iter()
                                    .filter_map(|v| v.get("value").and_then(|v| v.as_str()))
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        members.insert(name.clone(), ids);
                    }
                    None => check.missing_groups.push(name.clone()),
                },
                Err(call) => {
                    check.incomplete = Some(format!(
                        "the target's groups stopped answering after {} groups: {}",
                        check.compared, call.failure.detail
                    ));
                    return Ok(check);
                }
            }
        }
        let mut found = Vec::new();
        for (seq, scim_id, groups) in &expected {
            let missing: Vec<&str> = groups
                .iter()
                // A group the target does not have is listed once, not per user.
                .filter(|g| members.get(*g).is_some_and(|m| !m.contains(scim_id)))
                .map(String::as_str)
                .collect();
            let extra: Vec<&str> = members
                .iter()
                .filter(|(g, m)| !groups.contains(*g) && m.contains(scim_id))
                .map(|(g, _)| g.as_str())
                .collect();
            if missing.is_empty() && extra.is_empty() {
                continue;
            }
            let mut detail = Vec::new();
            if !missing.is_empty() {
                detail.push(format!("not a member of {}", names(&missing)));
            }
            if !extra.is_empty() {
                detail.push(format!(
                    "a member of {}, which its record does not name",
                    names(&extra)
                ));
            }
            found.push((
                *seq,
                format!("groups differ from the record: {}", detail.join("; ")),
            ));
        }
        check.users_differing = self.store.groups_differ(run.id, &found).await?;
        Ok(check)
    }

    /// Lists the target's users (their ids and `externalId`s, a page of 1,000 at a
    /// time) and keeps those that carry an `externalId` no run of the project
    /// recorded. Users without one are the target's own (its administrators, say).
    pub(super) async fn extra_users(
        &self,
        context: &Context,
    ) -> domain::Result<domain::runs::ExtraUsers> {
        let known: std::collections::HashSet<String> = self
            .store
            .known_scim_ids(context.run.project_id)
            .await?
            .into_iter()
            .collect();
        let mut found = domain::runs::ExtraUsers::default();
        let mut start = 1u64;
        loop {
            let path =
                format!("/Users?startIndex={start}&count={LISTED_PER_PAGE}&attributes=externalId");
            let page = match context.client.get(&path).await {
                Ok(page) => page,
                Err(call) => {
                    found.incomplete = Some(format!(
                        "the target's list of users stopped answering after {} users: {}",
                        found.listed, call.failure.detail
                    ));
                    break;
                }
            };
            let resources = page
                .get("Resources")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default();
            if resources.is_empty() {
                break;
            }
            for user in &resources {
                found.listed += 1;
                let id = user.get("id").and_then(|v| v.as_str()).unwrap_or_default();
                let external = user
                    .get("externalId")
                    .and_then(|v| v.as_str())
                    .filter(|e| !e.is_empty());
                if let Some(external) = external
                    && !known.contains(id)
                {
                    if found.users.len() < domain::runs::MAX_EXTRA_USERS {
                        found.users.push(domain::runs::ExtraUser {
                            scim_id: id.to_string(),
                            external_id: external.to_string(),
                        });
                    } else {
                        found.more += 1;
                    }
                }
            }
            start += resources.len() as u64;
            let total = page.get("totalResults").and_then(|t| t.as_u64());
            if total.is_some_and(|t| start > t) || start > LISTED_AT_MOST {
                break;
            }
        }
        Ok(found)
    }

    pub(super) async fn reconcile(&self, context: &Arc<Context>, claimed: &[Claimed]) -> Batch {
        let run = &context.run;
        let ids: Vec<String> = claimed.iter().map(|c| c.source_id.clone()).collect();
        let Some(sealed) = self.sealed_of(run, &ids).await else {
            return Batch::default();
        };
        let (vault, ctx, batch) = (context.vault.clone(), context.clone(), claimed.to_vec());
        let expected = match tokio::task::spawn_blocking(move || {
            batch
                .iter()
                .map(|c| {
                    (
                        c.seq,
                        c.scim_id.clone(),
                        expected(&vault, &ctx, c, sealed.get(&c.source_id)),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        {
            Ok(expected) => expected,
            Err(err) => {
                tracing::error!(run = %run.id, error = %err, "mapping a batch to compare failed; it waits");
                return Batch::default();
            }
        };
        let reads = read_all(context, expected).await;
        let mut out = Vec::with_capacity(reads.len());
        let mut pause = None;
        for (seq, scim_id, expected, read) in reads {
            let outcome = match (expected, read) {
                (Expected::Settle(s), _) => s,
                (Expected::Resource(_), None) => settled(
                    seq,
                    RecordState::Failed,
                    ErrorClass::Protocol.as_str(),
                    "the run recorded no SCIM id for this user",
                ),
                (Expected::Resource(resource), Some(Ok(kept))) => {
                    let paths: Vec<String> = diff(&resource, &kept)
                        .into_iter()
                        .map(|(path, ..)| path)
                        .collect();
                    if paths.is_empty() {
                        settled(
                            seq,
                            RecordState::Skipped,
                            domain::runs::reconcile::MATCHES,
                            "the target holds what the mapping makes of the record",
                        )
                    } else {
                        settled(
                            seq,
                            RecordState::Failed,
                            domain::runs::reconcile::DIFFERS,
                            differing(&paths),
                        )
                    }
                }
                (Expected::Resource(_), Some(Err(call)))
                    if call.class() == ErrorClass::NotFound =>
                {
                    settled(
                        seq,
                        RecordState::Failed,
                        domain::runs::reconcile::MISSING,
                        "the target no longer has this user (deleted there, or by another tool)",
                    )
                }
                (Expected::Resource(_), Some(Err(call)))
                    if call.class() == ErrorClass::Unauthorized =>
                {
                    // The rest of the batch goes back unread; the run waits for new
                    // credentials.
                    pause = Some(PauseReason::Unauthorized {
                        status: call.failure.status.unwrap_or(401),
                    });
                    continue;
                }
                (Expected::Resource(_), Some(Err(call))) => Settled {
                    scim_type: call.failure.scim_type.clone(),
                    ..settled(
                        seq,
                        RecordState::Failed,
                        call.class().as_str(),
                        call.failure.detail,
                    )
                },
            };
            out.push(Settled {
                scim_id: scim_id.clone(),
                ..outcome
            });
        }
        Batch {
            settled: out,
            pause,
            ..Batch::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::differing;

    #[test]
    fn differing_attributes_are_named_without_values_and_bounded() {
        let few = differing(&["name.givenName".into(), "title".into()]);
        assert_eq!(
            few,
            "the target holds other values for name.givenName, title than the mapping makes of \
             the record"
        );
        let many: Vec<String> = (0..11).map(|i| format!("a{i}")).collect();
        assert!(differing(&many).contains("a7 and 3 more"));
    }
}
