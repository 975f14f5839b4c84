//! The scheduler: every tick it starts scheduled runs whose window opened, pauses
//! running ones whose window ended, resumes paused ones whose new window opened, and
//! works on running runs no worker here is on (after a restart, or beside another
//! instance).

use super::*;

impl Runs {
    /// Starts the scheduler: every tick it starts scheduled jobs whose window opened,
    /// pauses running ones whose window ended, resumes paused ones whose new window
    /// opened, and works on running jobs no worker here is on (after a restart, or
    /// beside another instance).
    pub fn start_scheduler(&self) {
        let this = self.clone();
        self.0
            .background
            .spawn_logged("run scheduler", "every run", async move {
                let mut tick = tokio::time::interval(this.0.config.tick);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = this.0.shutdown.cancelled() => return Ok(()),
                        _ = tick.tick() => {
                            if let Err(err) = this.schedule().await {
                                tracing::error!(error = %err, "the scheduler's round failed");
                            }
                        }
                    }
                }
            });
    }

    /// One round of the scheduler.
    pub async fn schedule(&self) -> domain::Result<()> {
        let now = Utc::now();
        for job in self.0.store.active_jobs().await? {
            let settings = RunSettings::from_json(&job.settings).ok();
            let phase = settings
                .as_ref()
                .and_then(|s| s.placed)
                .map(|p| p.phase(now));
            let event = match (job.state, phase, &job.pause_reason) {
                (JobState::Scheduled, Some(Phase::Open(_)), _) => Some(JobEvent::Start),
                (JobState::Scheduled | JobState::Running, Some(Phase::Over), _) => {
                    Some(JobEvent::Pause(PauseReason::WindowEnded))
                }
                (JobState::Paused, Some(Phase::Open(_)), Some(PauseReason::WindowEnded)) => {
                    Some(JobEvent::Resume)
                }
                _ => None,
            };
            let job = match event {
                Some(event) => {
                    match advance(self.0.store.as_ref(), &job, &event, None, now).await {
                        Ok(moved) => {
                            tracing::info!(job = %job.id, from = job.state.as_str(), to = moved.state.as_str(), "the scheduler moved a run");
                            moved
                        }
                        // Another instance moved it first.
                        Err(DomainError::Conflict(_)) => continue,
                        Err(err) => return Err(err),
                    }
                }
                None => job,
            };
            match job.state {
                JobState::Running => self.wake(job.id),
                _ => self.stop(job.id),
            }
        }
        Ok(())
    }
}
