//! Records done by the background computations running now (assessments, impacts),
//! one counter per project, read from memory by progress requests.

use domain::ids::ProjectId;
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// Cheap to clone: clones share the counters.
#[derive(Clone, Default)]
pub struct Live(Arc<Mutex<HashMap<ProjectId, Arc<AtomicU64>>>>);

impl Live {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, Arc<AtomicU64>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh counter for a computation starting for `project`.
    pub fn start(&self, project: ProjectId) -> Arc<AtomicU64> {
        let done = Arc::new(AtomicU64::new(0));
        self.map().insert(project, done.clone());
        done
    }

    /// Records done so far, while it runs.
    pub fn get(&self, project: ProjectId) -> Option<u64> {
        self.map()
            .get(&project)
            .map(|done| done.load(Ordering::Relaxed))
    }

    /// A fresh counter for a computation starting for `project`, dropped from the
    /// list when the returned guard is dropped, however the computation ends.
    pub fn track(&self, project: ProjectId) -> Tracked {
        Tracked {
            live: self.clone(),
            project,
            done: self.start(project),
        }
    }

    pub fn finish(&self, project: ProjectId) {
        self.map().remove(&project);
    }
}

/// See [`Live::track`].
pub struct Tracked {
    live: Live,
    project: ProjectId,
    pub done: Arc<AtomicU64>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.finish(self.project);
    }
}
