//! Live progress as server-sent events, one way for every page that follows work in
//! the background: [`stream`] asks its source for each event in turn and ends the
//! stream when the source is done or Ferry begins to stop. The uploads of a project
//! being read are followed here: what they have done so far, twice a second from
//! memory (never a database query per browser), and a `settled` event when one
//! finishes so the page reloads that upload's final counts.

use super::{
    AppState,
    api::{ApiActor, ApiResult, project_id},
};
use axum::{
    extract::{Path, State},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use domain::{
    ids::{ProjectId, UploadId},
    pagination::PageRequest,
};
use futures_util::StreamExt;
use std::{convert::Infallible, future::Future, time::Duration};
use tokio::sync::broadcast::{self, error::RecvError};

/// How often progress read from memory is sent.
const TICK: Duration = Duration::from_millis(500);

/// A server-sent event stream: `next` gets the source back after each event and
/// answers the next event with the source, or `None` to end the stream. It also ends
/// when Ferry begins to stop, so the graceful shutdown never waits for a browser.
pub fn stream<S, F, Fut>(state: &AppState, source: S, mut next: F) -> Response
where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + 'static,
    Fut: Future<Output = Option<(Event, S)>> + Send + 'static,
{
    let stopping = state.background.stopping();
    let events = futures_util::stream::unfold(source, move |source| {
        let (stopping, step) = (stopping.clone(), next(source));
        async move {
            tokio::select! {
                () = stopping.cancelled() => None,
                step = step => step.map(|(event, source)| (Ok::<_, Infallible>(event), source)),
            }
        }
    });
    // Whatever polls the body after its end must find it ended, not panic.
    Sse::new(events.fuse())
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An event named `name` carrying `value` as JSON; `None` (logged) if it cannot be
/// encoded, which ends the stream.
pub fn json(name: &str, value: &impl serde::Serialize) -> Option<Event> {
    match Event::default().event(name).json_data(value) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::error!(error = %err, event = name, "an event could not be encoded");
            None
        }
    }
}

/// The pace of a stream that reads progress from memory: twice a second, without a
/// burst after a slow reader.
pub fn ticker() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// The live progress of a project's uploads: `progress` events carry a JSON list of
/// `LiveProgress` (an empty list once nothing is being read), `settled` events the id
/// of an upload whose reading ended (`all` when some were missed: reload them all).
#[utoipa::path(get, path = "/api/v1/projects/{id}/uploads/events", tag = "uploads",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, content_type = "text/event-stream", body = Vec<domain::uploads::LiveProgress>,
        description = "Server-sent events: `progress` (JSON list) and `settled` (upload id)"),
        (status = 404, body = super::api::ErrorBody)))]
pub async fn upload_events(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let project = project_id(&id)?;
    // The same check as listing the uploads: whoever may list them may follow them.
    state
        .ferry
        .list_uploads(&actor, project, PageRequest::new(Some(0), Some(1)))
        .await?;
    let uploads = Uploads {
        settled: state.ingest.settled(),
        state: state.clone(),
        project,
        tick: ticker(),
        quiet: false,
    };
    Ok(stream(&state, uploads, |mut uploads| async move {
        let event = uploads.next().await?;
        Some((event, uploads))
    }))
}

struct Uploads {
    state: AppState,
    project: ProjectId,
    settled: broadcast::Receiver<(ProjectId, UploadId)>,
    tick: tokio::time::Interval,
    /// An empty list was sent last: nothing more to say until something is read.
    quiet: bool,
}

impl Uploads {
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                message = self.settled.recv() => match message {
                    Ok((project, id)) if project == self.project => {
                        return Some(Event::default().event("settled").data(id.to_string()));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        // An event with empty data is never dispatched by browsers.
                        return Some(Event::default().event("settled").data("all"));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    let live = self.state.ingest.live(self.project);
                    if live.is_empty() && self.quiet {
                        continue;
                    }
                    self.quiet = live.is_empty();
                    return json("progress", &live);
                }
            }
        }
    }
}
