//! The use-case behind the stage checklist and the projects list's progress: each
//! step's state, read from what the store keeps. Anyone who may see the project.

use super::Ferry;
use crate::{
    Result,
    accounts::Actor,
    ids::ProjectId,
    journey::{Facts, Journey, PasswordFacts},
    pagination::PageRequest,
    scim::target::TargetRole,
    user_types::PasswordStrategy,
};

/// Newest uploads and runs looked at: enough to tell what is under way.
const LOOKED_AT: u32 = 50;

impl Ferry {
    /// How far the project's migration has got, and the next step.
    pub async fn journey(&self, actor: &Actor, project: ProjectId) -> Result<Journey> {
        self.project(actor, project).await?;
        Ok(Journey::of(&self.journey_facts(project).await?))
    }

    /// The journeys of several projects (a page of the projects list); projects the
    /// actor may not see are left out.
    pub async fn journeys(
        &self,
        actor: &Actor,
        projects: &[ProjectId],
    ) -> Result<Vec<(ProjectId, Journey)>> {
        let mut journeys = Vec::with_capacity(projects.len());
        for &project in projects.iter().take(LOOKED_AT as usize) {
            match self.journey(actor, project).await {
                Ok(journey) => journeys.push((project, journey)),
                Err(crate::DomainError::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(journeys)
    }

    async fn journey_facts(&self, project: ProjectId) -> Result<Facts> {
        let newest = PageRequest::new(None, Some(LOOKED_AT));
        let uploads = self.store.list_uploads(project, newest).await?.items;
        let records = self.store.count_records(project).await?;
        let assessment = self
            .store
            .assessment(project)
            .await?
            .map(|a| (a.status, a.started_at));
        let target = self
            .store
            .targets(project)
            .await?
            .into_iter()
            .find(|t| t.role == TargetRole::Production)
            .map(|t| t.last_test.map(|report| report.passed()));
        let stored_types = self.store.user_types(project).await?;
        let user_type_problems = stored_types.as_ref().map(|stored| {
            stored
                .user_types
                .compile(self.now())
                .err()
                .map_or(0, |problems| problems.len())
        });
        let moving = |strategy: PasswordStrategy| {
            stored_types.as_ref().is_some_and(|stored| {
                stored
                    .user_types
                    .user_types
                    .iter()
                    .any(|t| t.include && t.password == strategy)
            })
        };
        let review = self.store.queue_summary(project).await?;
        let mut passwords = PasswordFacts {
            silent_types: moving(PasswordStrategy::SilentMigration),
            reset_types: moving(PasswordStrategy::ForcedReset),
            ..PasswordFacts::default()
        };
        // The rest counts only once users whose type moves a password are in the
        // target: the projects list asks this for a page of projects at a time.
        if review.password_users > 0 {
            passwords.service_on = self
                .store
                .password_service(project)
                .await?
                .is_some_and(|s| s.settings.enabled);
            passwords.waves_planned = self
                .store
                .wave_plan(project)
                .await?
                .is_some_and(|plan| plan.enabled);
            passwords.moved = self.store.passwords_moved(project).await?;
        }
        let mapping_problems = match self.store.mapping_version(project, None).await? {
            Some(saved) => {
                let mapping = saved.mapping.clone();
                Some(
                    self.view_of(project, Some(&saved), mapping)
                        .await?
                        .problems
                        .len(),
                )
            }
            None => None,
        };
        let runs = self.store.runs(project, newest).await?.items;
        let plan = self
            .store
            .plan_version(project, None)
            .await?
            .map(|v| (v.summary.version, v.summary.approved_at.is_some()));
        Ok(Facts {
            plan,
            passwords,
            review,
            uploads,
            records,
            assessment,
            target,
            user_type_problems,
            mapping_problems,
            runs,
        })
    }
}
