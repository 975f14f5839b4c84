//! What the background work running in this instance has done so far, in memory and
//! keyed by what it works on (an upload, a project's assessment or mapping impact, a
//! run): the workers feed their entries, progress requests and event streams read
//! them, never the database. An entry leaves when its work ends, however it ends.

use domain::ids::{ProjectId, RunId, UploadId};
use std::{
    any::Any,
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// What a piece of background work is working on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    Upload(UploadId),
    Assessment(ProjectId),
    Impact(ProjectId),
    Run(RunId),
}

type Entry = Arc<dyn Any + Send + Sync>;

/// Cheap to clone: clones share the entries.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<Work, Entry>>>);

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Work, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `entry` as the progress of `work` until the returned guard drops.
    pub fn track<T: Any + Send + Sync>(&self, work: Work, entry: Arc<T>) -> Tracked<T> {
        self.map().insert(work, entry.clone());
        Tracked {
            registry: self.clone(),
            work,
            entry,
        }
    }

    /// The entry of `work`, while it runs here.
    pub fn get<T: Any + Send + Sync>(&self, work: Work) -> Option<Arc<T>> {
        self.map().get(&work).cloned()?.downcast().ok()
    }

    /// The entry of `work`, made by `make` if there is none.
    pub fn get_or_insert<T: Any + Send + Sync>(
        &self,
        work: Work,
        make: impl FnOnce() -> T,
    ) -> (Arc<T>, bool) {
        let mut map = self.map();
        if let Some(entry) = map.get(&work).cloned().and_then(|e| e.downcast().ok()) {
            return (entry, false);
        }
        let entry = Arc::new(make());
        map.insert(work, entry.clone());
        (entry, true)
    }

    /// Every entry of type `T` whose work passes `wanted`.
    pub fn all<T: Any + Send + Sync>(&self, wanted: impl Fn(&Work) -> bool) -> Vec<(Work, Arc<T>)> {
        self.map()
            .iter()
            .filter(|(work, _)| wanted(work))
            .filter_map(|(work, entry)| Some((*work, entry.clone().downcast().ok()?)))
            .collect()
    }

    /// Takes `work`'s entry out (only if it is still `entry`: a newer one stays).
    pub fn remove<T: Any + Send + Sync>(&self, work: Work, entry: &Arc<T>) {
        let mut map = self.map();
        let same = map.get(&work).is_some_and(|e| {
            std::ptr::eq(Arc::as_ptr(e).cast::<()>(), Arc::as_ptr(entry).cast::<()>())
        });
        if same {
            map.remove(&work);
        }
    }

    /// Records done so far by a counted piece of work (an assessment, an impact).
    pub fn done(&self, work: Work) -> Option<u64> {
        self.get::<AtomicU64>(work)
            .map(|done| done.load(Ordering::Relaxed))
    }

    /// A fresh count of records done for `work`, registered until the guard drops.
    pub fn count(&self, work: Work) -> Tracked<AtomicU64> {
        self.track(work, Arc::new(AtomicU64::new(0)))
    }
}

/// See [`Registry::track`].
pub struct Tracked<T: Any + Send + Sync> {
    registry: Registry,
    work: Work,
    entry: Arc<T>,
}

impl<T: Any + Send + Sync> Tracked<T> {
    pub fn entry(&self) -> &Arc<T> {
        &self.entry
    }
}

impl<T: Any + Send + Sync> Drop for Tracked<T> {
    fn drop(&mut self) {
        self.registry.remove(self.work, &self.entry);
    }
}
