//! The use-cases of the assessment: starting it, its report as each role may see it,
//! findings, classing attributes and revealing an example (audited).

use super::*;

impl Ferry {
    /// Starts computing the project's assessment report in the background.
    pub async fn start_assessment(
        &self,
        actor: &Actor,
        project: ProjectId,
        options: AssessOptions,
    ) -> Result<()> {
        let runner = self.workers.assessments.as_ref();
        self.writable_project(actor, project).await?;
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let region = options.phone_region.as_deref().map(str::trim).unwrap_or("");
        if !region.is_empty()
            && (region.len() != 2 || !region.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(DomainError::invalid(
                "phone_region",
                "give a two-letter country code such as US or DE",
            ));
        }
        let options = AssessOptions {
            phone_region: (!region.is_empty()).then(|| region.to_ascii_uppercase()),
        };
        let total = self.store.count_records(project).await?;
        if total == 0 {
            return Err(DomainError::Conflict(
                "the project has no records yet; upload an export first".into(),
            ));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::AssessmentStarted,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{total} records"));
        self.store
            .start_assessment(project, total, now, &audit)
            .await?;
        runner.spawn(project, options);
        Ok(())
    }

    /// The project's assessment as the actor may see it: examples masked, classes as
    /// set by administrators, the heatmap in `zone` (an IANA name; UTC by default).
    pub async fn assessment(
        &self,
        actor: &Actor,
        project: ProjectId,
        zone: Option<&str>,
    ) -> Result<Option<AssessmentView>> {
        let runner = self.workers.assessments.as_ref();
        self.project(actor, project).await?;
        let zone_name = zone
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .unwrap_or("UTC");
        let tz: chrono_tz::Tz = zone_name.parse().map_err(|_| {
            DomainError::invalid("zone", format!("{zone_name:?} is not a time zone"))
        })?;
        let Some(row) = self.store.assessment(project).await? else {
            return Ok(None);
        };
        let classes = self.store.attribute_classes(project).await?;
        let report = match &row.sealed_report {
            Some(sealed) => Some(
                runner
                    .open_report(project, sealed)
                    .await?
                    .with_classes(&classes),
            ),
            None => None,
        };
        let heatmap = report
            .as_ref()
            .map(|r| {
                heatmap(&r.logins, tz)
                    .iter()
                    .map(|day| day.to_vec())
                    .collect()
            })
            .unwrap_or_default();
        let records_done = match row.status {
            AssessmentStatus::Running => runner.progress(project).unwrap_or(row.records_done),
            _ => row.records_done,
        };
        Ok(Some(AssessmentView {
            status: row.status,
            records_total: row.records_total,
            records_done,
            started_at: row.started_at,
            finished_at: row.finished_at,
            error: row.error,
            report: report.map(Report::masked),
            zone: tz.name().to_string(),
            heatmap,
            can_reveal: actor.role.allows(Permission::ManageProjects),
        }))
    }

    pub async fn assessment_findings(
        &self,
        actor: &Actor,
        project: ProjectId,
        check: Check,
        page: PageRequest,
    ) -> Result<Page<Finding>> {
        self.project(actor, project).await?;
        self.store.findings(project, check, page).await
    }

    /// Sets an attribute's class (or with `None` returns it to the automatic one).
    pub async fn set_attribute_class(
        &self,
        actor: &Actor,
        project: ProjectId,
        path: &str,
        class: Option<DataClass>,
    ) -> Result<()> {
        self.writable_project(actor, project).await?;
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let path = path.trim();
        if path.is_empty() || path.len() > 500 {
            return Err(DomainError::invalid("path", "name an attribute path"));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::AttributeClassSet,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{path}: {}",
            class.map_or("automatic", DataClass::as_str)
        ));
        self.store
            .set_attribute_class(project, path, class, now, &audit)
            .await
    }

    /// One example value, unmasked, for owners and administrators; the audit entry
    /// (naming the attribute, never the value) is written before it is returned.
    pub async fn reveal_example(
        &self,
        actor: &Actor,
        project: ProjectId,
        path: &str,
        index: usize,
    ) -> Result<String> {
        let runner = self.workers.assessments.as_ref();
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let not_found = || DomainError::NotFound("example value".into());
        let sealed = self
            .store
            .assessment(project)
            .await?
            .and_then(|row| row.sealed_report)
            .ok_or_else(not_found)?;
        let classes = self.store.attribute_classes(project).await?;
        let report = runner
            .open_report(project, &sealed)
            .await?
            .with_classes(&classes);
        let value = report
            .example(path, index)
            .ok_or_else(not_found)?
            .to_string();
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::AssessmentValueRevealed,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{path} example {}", index + 1));
        self.store.append_audit(&audit).await?;
        Ok(value)
    }
}
