//! The scheduler: every tick it starts scheduled runs whose window opened, pauses
//! running ones whose window ended, resumes paused ones whose new window opened, and
//! works on running runs no worker here is on (after a restart, or beside another
//! instance).

use super::*;

impl Runs {
    /// Starts the scheduler: every tick it starts scheduled runs whose window opened,
    /// pauses running ones whose window ended, resumes paused ones whose new window
    /// opened, and works on running runs no worker here is on (after a restart, or
    /// beside another instance).
    pub fn start_scheduler(&self) {
        let this = self.clone();
        self.0
            .background
            .spawn_logged("run scheduler", "every run", async move {
                this.lapse_predecessors().await;
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

    /// A process that ran before under this one's name is gone: its claims lapse now
    /// rather than after their lease (a failure here only means waiting them out).
    async fn lapse_predecessors(&self) {
        let Some(name) = &self.0.config.instance else {
            return;
        };
        let prefix = format!("{name}~");
        match self
            .0
            .store
            .lapse_leases(&prefix, &self.0.instance, Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(records) => {
                tracing::info!(instance = %name, records, "took up the records a predecessor of this instance left claimed");
            }
            Err(err) => {
                tracing::warn!(instance = %name, error = %err, "could not lapse a predecessor's leases; they will be waited out");
            }
        }
    }

    /// One round of the scheduler.
    pub async fn schedule(&self) -> domain::Result<()> {
        let now = Utc::now();
        for run in self.0.store.active_runs().await? {
            let settings = RunSettings::from_json(&run.settings).ok();
            let phase = settings
                .as_ref()
                .and_then(|s| s.placed)
                .map(|p| p.phase(now));
            let event = match (run.state, phase, &run.pause_reason) {
                (RunState::Scheduled, Some(Phase::Open(_)), _) => Some(RunEvent::Start),
                (RunState::Scheduled | RunState::Running, Some(Phase::Over), _) => {
                    Some(RunEvent::Pause(PauseReason::WindowEnded))
                }
                (RunState::Paused, Some(Phase::Open(_)), Some(PauseReason::WindowEnded)) => {
                    Some(RunEvent::Resume)
                }
                _ => None,
            };
            let run = match event {
                Some(event) => {
                    match advance(self.0.store.as_ref(), &run, &event, None, now).await {
                        Ok(moved) => {
                            tracing::info!(run = %run.id, from = run.state.as_str(), to = moved.state.as_str(), "the scheduler moved a run");
                            moved
                        }
                        // Another instance moved it first.
                        Err(DomainError::Conflict(_)) => continue,
                        Err(err) => return Err(err),
                    }
                }
                None => run,
            };
            match run.state {
                RunState::Running => self.wake(run.id),
                _ => self.stop(run.id),
            }
        }
        Ok(())
    }
}
