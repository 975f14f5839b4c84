//! Receiving exports: the request body streams into a sealed file (never whole in
//! memory), hashed and counted on the way, within the configured size limit; then the
//! upload is recorded and read in the background. Serves the REST API (bearer token)
//! and the browser (session cookie) alike.

use super::{AppState, api::ApiError, auth::Resolved};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use domain::{
    DomainError,
    ids::{ProjectId, UploadId},
    uploads::{NewUpload, normalize_file_name},
};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Write;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    /// The file's name, for people to recognize it (detection ignores it).
    file_name: Option<String>,
}

fn too_large(limit: u64) -> Response {
    let body = serde_json::json!({"error": {
        "code": "too_large",
        "message": format!("the file is larger than the limit of {} MiB (FERRY_MAX_UPLOAD_BYTES)", limit >> 20),
        "field": "body",
    }});
    (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
}

/// Why receiving stopped early.
enum Stop {
    TooLarge,
    Broken(DomainError),
}

/// Stores an export sent as the request body.
#[utoipa::path(post, path = "/api/v1/projects/{id}/uploads", tag = "uploads",
    params(("id" = String, Path, description = "Project id"), UploadParams),
    request_body(content = String, content_type = "application/octet-stream", description = "The export, optionally gzip or zip"),
    responses((status = 201, body = domain::uploads::Upload), (status = 409, body = super::api::ErrorBody, description = "Already uploaded"),
        (status = 413, body = super::api::ErrorBody), (status = 422, body = super::api::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(params): Query<UploadParams>,
    request: axum::extract::Request,
) -> Response {
    match receive_inner(state, project, params, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn receive_inner(
    state: AppState,
    project: String,
    params: UploadParams,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let actor = request
        .extensions()
        .get::<Resolved>()
        .and_then(|r| r.actor.clone())
        .ok_or_else(|| DomainError::Unauthenticated("sign in, or send an API token".into()))?;
    let project: ProjectId = project.parse()?;
    state.ferry.may_upload(&actor, project).await?;
    let limit = state.max_upload_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(too_large(limit));
    }

    let vault = state.ingest.vault(project).await?;
    let id = UploadId(uuid::Uuid::now_v7());
    let path = state.ingest.path(id);
    let file = std::fs::File::create(&path)
        .map_err(|e| DomainError::Internal(format!("cannot create the upload file: {e}")))?;
    let mut writer = vault
        .writer(std::io::BufWriter::new(file))
        .map_err(|e| DomainError::Internal(format!("cannot write the upload file: {e}")))?;
    // A small channel between the network and the disk keeps memory flat.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<axum::body::Bytes>(8);
    let disk = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        while let Some(chunk) = receiver.blocking_recv() {
            writer.write_all(&chunk)?;
        }
        writer.finish()?.flush()
    });
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut body = request.into_body().into_data_stream();
    let mut outcome = Ok(());
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => {
                let reason = format!("the upload was interrupted: {err}");
                outcome = Err(Stop::Broken(DomainError::invalid("body", reason)));
                break;
            }
        };
        size += chunk.len() as u64;
        if size > limit {
            outcome = Err(Stop::TooLarge);
            break;
        }
        hasher.update(&chunk);
        if sender.send(chunk).await.is_err() {
            break;
        }
    }
    drop(sender);
    let written = disk
        .await
        .map_err(|e| DomainError::Internal(format!("upload writer: {e}")));
    let discard = || {
        let _ = std::fs::remove_file(&path);
    };
    match (outcome, written) {
        (Err(Stop::TooLarge), _) => {
            discard();
            return Ok(too_large(limit));
        }
        (Err(Stop::Broken(err)), _) | (Ok(()), Err(err)) => {
            discard();
            return Err(err.into());
        }
        (Ok(()), Ok(Err(err))) => {
            discard();
            return Err(
                DomainError::Internal(format!("cannot write the upload file: {err}")).into(),
            );
        }
        (Ok(()), Ok(Ok(()))) => {}
    }
    if size == 0 {
        discard();
        return Err(DomainError::invalid("body", "the file is empty").into());
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let new = NewUpload {
        id,
        project_id: project,
        file_name: normalize_file_name(params.file_name.as_deref().unwrap_or("upload")),
        size_bytes: size,
        sha256,
        created_by: actor.account_id,
        created_at: Utc::now(),
    };
    let upload = match state.ferry.record_upload(&actor, new).await {
        Ok(upload) => upload,
        Err(err) => {
            discard();
            return Err(err.into());
        }
    };
    tracing::info!(upload = %upload.id, project = %project, bytes = size, "upload stored");
    state.ingest.start(upload.id, Default::default()).await?;
    Ok((StatusCode::CREATED, Json(upload)).into_response())
}
