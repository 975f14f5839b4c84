//! Live progress as server-sent events: what the uploads of a project being read have
//! done so far, twice a second from memory (never a database query per browser), and
//! a `settled` event when one finishes so the page reloads that upload's final counts.

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
use std::{convert::Infallible, time::Duration};
use tokio::sync::broadcast::{self, error::RecvError};

/// How often progress is sent while something is being read.
const TICK: Duration = Duration::from_millis(500);

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
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let events = Events {
        settled: state.ingest.settled(),
        state,
        project,
        tick,
        quiet: false,
    };
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let event = events.next().await?;
        Some((Ok::<_, Infallible>(event), events))
    });
    // Whatever polls the body after its end must find it ended, not panic.
    let stream = futures_util::StreamExt::fuse(stream);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

struct Events {
    state: AppState,
    project: ProjectId,
    settled: broadcast::Receiver<(ProjectId, UploadId)>,
    tick: tokio::time::Interval,
    /// An empty list was sent last: nothing more to say until something is read.
    quiet: bool,
}

impl Events {
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                () = self.state.background.stopping().cancelled_owned() => return None,
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
                    match Event::default().event("progress").json_data(&live) {
                        Ok(event) => return Some(event),
                        Err(err) => {
                            tracing::error!(error = %err, "progress event encoding failed");
                            return None;
                        }
                    }
                }
            }
        }
    }
}
