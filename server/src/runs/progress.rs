//! A run's live progress: the meter of its rate and chart, the channel its followers
//! listen on, and the follower that reads a run no worker here drives.

use super::*;

/// The rate of one run as seen here.
pub(super) struct Meter {
    started: Instant,
    /// Settled records when this instance began, and since.
    base: u64,
    recent: VecDeque<(Instant, u64)>,
    points: Vec<(u64, u64)>,
    last_point: Option<Instant>,
    /// Seconds the run had run before this instance began (for the chart's axis).
    offset: u64,
}

impl Meter {
    pub(super) fn new(settled: u64, offset: u64) -> Self {
        Self {
            started: Instant::now(),
            base: settled,
            recent: VecDeque::from([(Instant::now(), settled)]),
            points: vec![(offset, settled)],
            last_point: Some(Instant::now()),
            offset,
        }
    }

    pub(super) fn observe(&mut self, settled: u64) {
        let now = Instant::now();
        self.recent.push_back((now, settled));
        while self.recent.len() > 2 && now.duration_since(self.recent[0].0) > RATE_SPAN {
            self.recent.pop_front();
        }
        if self
            .last_point
            .is_none_or(|t| now.duration_since(t) >= POINT_EVERY)
        {
            self.last_point = Some(now);
            let at = self.offset + now.duration_since(self.started).as_secs();
            self.points.push((at, settled));
            if self.points.len() > MAX_POINTS {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
            }
        }
    }

    pub(super) fn progress(&self, run: &Run) -> Progress {
        let settled = run.counts.settled();
        let elapsed = self.started.elapsed().as_secs_f64();
        let average = (elapsed > 0.5).then(|| (settled - self.base.min(settled)) as f64 / elapsed);
        let current = match (self.recent.front(), self.recent.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                Some((b.1.saturating_sub(a.1)) as f64 / b.0.duration_since(a.0).as_secs_f64())
            }
            _ => None,
        };
        let remaining = run.total - settled.min(run.total);
        Progress {
            state: Some(run.state),
            counts: run.counts,
            total: run.total,
            current_rate: current,
            average_rate: average,
            eta_seconds: current
                .filter(|r| *r > 0.0)
                .map(|r| (remaining as f64 / r).ceil() as u64),
            rate_points: self.points.clone(),
            live: true,
        }
    }
}

impl Runs {
    /// The live progress of a run, as a channel the event stream follows. Fed by the
    /// workers while the run runs here; otherwise one task per run reads its counts
    /// every few seconds for all who follow it.
    pub fn subscribe(&self, run: RunId) -> watch::Receiver<Progress> {
        let (feed, fresh) = self
            .0
            .background
            .progress()
            .get_or_insert(Work::Run(run), || watch::channel(Progress::default()).0);
        let receiver = feed.subscribe();
        if !fresh {
            return receiver;
        }
        let inner = self.0.clone();
        self.0
            .background
            .spawn_logged("run progress follower", run, async move {
                inner.follow(run).await;
                Ok(())
            });
        receiver
    }
}

/// Records settled per second from start to finish (or to now).
pub(super) fn average_rate(run: &Run) -> Option<f64> {
    let start = run.started_at?;
    let end = run.finished_at.unwrap_or_else(Utc::now);
    let seconds = (end - start).num_milliseconds() as f64 / 1000.0;
    (seconds > 0.5).then(|| run.counts.settled() as f64 / seconds)
}

impl Inner {
    pub(super) fn publish(&self, run: &Run, drive: &Drive) {
        let progress = {
            let mut meter = lock(&drive.meter);
            meter.observe(run.counts.settled());
            meter.progress(run)
        };
        if let Some(feed) = self.feed(run.id) {
            feed.send_replace(progress);
        }
    }

    /// The channel the followers of `run` listen on, while anyone does.
    pub(super) fn feed(&self, run: RunId) -> Option<Arc<watch::Sender<Progress>>> {
        self.background.progress().get(Work::Run(run))
    }

    /// Feeds followers of a run no worker here runs: its counts every few seconds,
    /// until nobody follows or it ends.
    pub(super) async fn follow(self: Arc<Self>, id: RunId) {
        loop {
            let Some(feed) = self.feed(id) else { return };
            if feed.receiver_count() == 0 || self.shutdown.is_cancelled() {
                self.background.progress().remove(Work::Run(id), &feed);
                return;
            }
            let driven = lock(&self.drives).get(&id).cloned();
            if driven.is_none() {
                match self.store.run(id).await {
                    Ok(Some(run)) => {
                        let progress = Progress {
                            state: Some(run.state),
                            counts: run.counts,
                            total: run.total,
                            average_rate: average_rate(&run),
                            ..Progress::default()
                        };
                        feed.send_replace(progress);
                    }
                    Ok(None) => {
                        self.background.progress().remove(Work::Run(id), &feed);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(run = %id, error = %err, "reading a run's progress failed")
                    }
                }
            }
            tokio::time::sleep(POINT_EVERY).await;
        }
    }
}
