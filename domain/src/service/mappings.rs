//! The use-cases of the attribute mapping: read the current (or a given) version with
//! what is wrong with it against the production target's discovered schemas — or,
//! before anything is saved, the suggestion for the project's source — save a new
//! version, list and compare versions, export and import them. Owners and
//! administrators only.

use super::Ferry;
use crate::{
    DomainError, Result,
    accounts::Actor,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::ProjectId,
    mapping::{
        Mapping, RuleProblem,
        suggest::suggested,
        versions::{
            MappingVersion, MappingVersionSummary, RuleChange, diff, export, import, normalize_note,
        },
    },
    pagination::{Page, PageRequest},
    ports::Sample,
    roles::Permission,
    scim::{discovery::Discovery, target::TargetRole},
};
use serde::{Deserialize, Serialize};

/// The most rules one mapping may hold.
pub const MAX_RULES: usize = 500;

/// Records the suggested mapping is fitted to.
const SUGGESTION_SAMPLE: u32 = 1_000;

/// A mapping as the editor shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MappingView {
    /// The saved version shown; `None` for the suggestion offered before any is saved.
    pub version: Option<MappingVersionSummary>,
    pub mapping: Mapping,
    /// What is wrong with the rules, each naming its rule and field; empty when the
    /// mapping can be used.
    pub problems: Vec<RuleProblem>,
    /// Whether the rules were checked against the production target's schemas (its
    /// last connection test), or only for themselves.
    pub checked_against_target: bool,
    /// Of a suggestion: where it departs from the format's usual fields, and why (the
    /// fields the records hold).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Ferry {
    async fn may_map(&self, actor: &Actor, project: ProjectId) -> Result<crate::projects::Project> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await
    }

    /// What the production target's last connection test discovered, if anything.
    pub(super) async fn production_discovery(
        &self,
        project: ProjectId,
    ) -> Result<Option<Discovery>> {
        Ok(self
            .store
            .target(project, TargetRole::Production)
            .await?
            .and_then(|t| t.last_test)
            .and_then(|r| r.discovery))
    }

    pub(super) async fn view_of(
        &self,
        project: ProjectId,
        version: Option<&MappingVersion>,
        mapping: Mapping,
    ) -> Result<MappingView> {
        let discovery = self.production_discovery(project).await?;
        let mut problems = match mapping.compile(discovery.as_ref()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        };
        problems.extend(self.confidential_problems(project, &mapping).await?);
        Ok(MappingView {
            version: version.map(MappingVersionSummary::from),
            mapping,
            problems,
            checked_against_target: discovery.is_some(),
            notes: Vec::new(),
        })
    }

    /// The attribute paths a rule may write, from the production target's schemas (or
    /// the core ones before its connection is tested).
    pub async fn mapping_targets(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<Vec<crate::mapping::target::Offered>> {
        self.may_map(actor, project).await?;
        let discovery = self.production_discovery(project).await?;
        Ok(crate::mapping::target::offered(
            discovery.as_ref(),
            crate::scim::urn::USER,
        ))
    }

    /// The latest version (or `version`); before any is saved, the suggestion.
    pub async fn mapping(
        &self,
        actor: &Actor,
        project: ProjectId,
        version: Option<u32>,
    ) -> Result<MappingView> {
        let p = self.may_map(actor, project).await?;
        match self.store.mapping_version(project, version).await? {
            Some(saved) => {
                let mapping = saved.mapping.clone();
                self.view_of(project, Some(&saved), mapping).await
            }
            None if version.is_some() => Err(DomainError::NotFound("mapping version".into())),
            None => {
                let discovery = self.production_discovery(project).await?;
                // Fitted to the records: a suggestion that names fields this export
                // does not have would reject every user.
                let sample = self
                    .workers
                    .records
                    .sample(project, &Sample::Random { seed: 0 }, SUGGESTION_SAMPLE)
                    .await?;
                let suggestion = suggested(p.source_kind, discovery.as_ref(), &sample.records);
                let mut view = self.view_of(project, None, suggestion.mapping).await?;
                view.notes = suggestion.notes;
                Ok(view)
            }
        }
    }

    /// Saves the rules as the next version. Rules with problems are saved too (the
    /// editor keeps work in progress); the problems come back with the version, and
    /// runs refuse a mapping that has any.
    pub async fn save_mapping(
        &self,
        actor: &Actor,
        project: ProjectId,
        mapping: Mapping,
        note: &str,
    ) -> Result<MappingView> {
        self.writable_project(actor, project).await?;
        self.may_map(actor, project).await?;
        let note = normalize_note(note)?;
        if mapping.rules.len() > MAX_RULES {
            return Err(DomainError::invalid(
                "rules",
                format!("a mapping holds at most {MAX_RULES} rules"),
            ));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::MappingSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{} rules", mapping.rules.len()));
        let number = self
            .store
            .save_mapping_version(
                project,
                &mapping,
                &note,
                Some(actor.account_id),
                now,
                &audit,
            )
            .await?;
        let saved = self
            .store
            .mapping_version(project, Some(number))
            .await?
            .ok_or_else(|| DomainError::Internal("the saved mapping vanished".into()))?;
        self.view_of(project, Some(&saved), mapping).await
    }

    pub async fn mapping_versions(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<MappingVersionSummary>> {
        self.may_map(actor, project).await?;
        self.store.mapping_versions(project, page).await
    }

    async fn saved_version(&self, project: ProjectId, version: u32) -> Result<MappingVersion> {
        self.store
            .mapping_version(project, Some(version))
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("mapping version {version}")))
    }

    /// What changed from version `from` to version `to`.
    pub async fn mapping_diff(
        &self,
        actor: &Actor,
        project: ProjectId,
        from: u32,
        to: u32,
    ) -> Result<Vec<RuleChange>> {
        self.may_map(actor, project).await?;
        let before = self.saved_version(project, from).await?;
        let after = self.saved_version(project, to).await?;
        Ok(diff(&before.mapping, &after.mapping))
    }

    /// The version (latest by default) as an export document.
    pub async fn export_mapping(
        &self,
        actor: &Actor,
        project: ProjectId,
        version: Option<u32>,
    ) -> Result<(u32, String)> {
        self.may_map(actor, project).await?;
        let saved = self
            .store
            .mapping_version(project, version)
            .await?
            .ok_or_else(|| DomainError::NotFound("mapping version".into()))?;
        Ok((saved.version, export(&saved.mapping, &saved.note)))
    }

    /// Reads an export document and saves it as the next version.
    pub async fn import_mapping(
        &self,
        actor: &Actor,
        project: ProjectId,
        document: &str,
    ) -> Result<MappingView> {
        self.may_map(actor, project).await?;
        let (mapping, note) = import(document)?;
        let note = if note.is_empty() {
            "imported".to_string()
        } else {
            format!("imported: {note}")
        };
        let note: String = note
            .chars()
            .take(crate::mapping::versions::MAX_NOTE_CHARS)
            .collect();
        self.save_mapping(actor, project, mapping, &note).await
    }
}
