//! Casbin in kluis: the policy files admins edit, checked against the real
//! schema before they are used, loaded together with the role assignments
//! from the database, and swapped atomically when either changes. A broken
//! file never takes the server down and never widens access: the previous
//! policy stays in force and the rejection is logged and shown to admins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi, RbacApi};
use chrono::{DateTime, Utc};
use domain::auth::{EVERY_VENUE, Role};
use sha2::{Digest, Sha256};
use store::Store;

pub const MODEL_FILE: &str = "model.conf";
pub const POLICY_FILE: &str = "policy.csv";
pub const ACTIONS: [&str; 4] = ["read", "write", "execute", "*"];

/// Why a policy was refused, pointing at the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

/// One permission line: a role may do an action on matching coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub line: usize,
    pub role: String,
    pub object: String,
    pub action: String,
}

/// A policy that passed every check, ready to be enforced.
#[derive(Debug, Clone)]
pub struct CheckedPolicy {
    model: String,
    pub permissions: Vec<Permission>,
    /// `g` lines written in the file itself (subject, role, venue).
    pub file_assignments: Vec<(String, String, String)>,
    pub hash: String,
}

/// Casbin's `keyMatch`: `*` matches any run of characters.
pub fn key_match(key: &str, pattern: &str) -> bool {
    match pattern.split_once('*') {
        None => key == pattern,
        Some((prefix, _)) => key.starts_with(prefix),
    }
}

/// The model kluis ships and enforces. An edited `model.conf` must say the
/// same thing: Casbin lets a model redefine who may do what (an allow-all
/// effect, a matcher of `true`), so anything else would widen access in a
/// way no check on `policy.csv` can see.
const SHIPPED_MODEL: &str = include_str!("../../policies/model.conf");

/// Drops whitespace outside double-quoted strings, so layout does not count
/// but `"*"` and `" *"` stay different.
fn normalized(text: &str) -> String {
    let mut quoted = false;
    text.chars()
        .filter(|c| {
            if *c == '"' {
                quoted = !quoted;
            }
            quoted || !c.is_whitespace()
        })
        .collect()
}

/// Whether `value` says what the shipped entry says. Casbin compares the
/// effect as text (and panics on one it does not know, at the first
/// request), so the effect must match exactly; the other definitions and
/// the matcher are parsed, so layout does not count there.
fn same_value(expected: &ModelEntry, value: &str) -> bool {
    if expected.section == "policy_effect" {
        expected.value == value
    } else {
        normalized(&expected.value) == normalized(value)
    }
}

/// One `key = value` of a model file, where Casbin would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelEntry {
    section: String,
    key: String,
    value: String,
    line: usize,
}

fn section_name(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.strip_suffix(']')
}

/// Reads a model the way casbin-rs's config parser does (trimmed lines,
/// `#` and `;` comment lines, `[section]` headers, `\` continuations, the
/// first `=` splitting key from value), but keeps every entry in order
/// instead of letting a later duplicate silently replace an earlier one.
fn model_entries(model: &str) -> Result<Vec<ModelEntry>, PolicyError> {
    let mut entries = Vec::new();
    let mut section = String::from("default");
    let mut lines = model.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    while let Some((number, line)) = lines.next() {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = section_name(line) {
            section = name.to_owned();
            continue;
        }
        let mut text = line.to_owned();
        let mut next_section = None;
        while let Some(continued) = text.strip_suffix('\\') {
            text = continued.trim_end().to_owned();
            let Some((_, inner)) = lines.next() else {
                break;
            };
            if inner.is_empty() || inner.starts_with('#') || inner.starts_with(';') {
                continue;
            }
            if let Some(name) = section_name(inner) {
                next_section = Some(name.to_owned());
            } else {
                text.push_str(inner);
            }
        }
        let text = text.trim_end_matches(|c: char| c.is_whitespace() || c == '\\');
        let Some((key, value)) = text.split_once('=') else {
            return Err(PolicyError {
                file: MODEL_FILE.to_owned(),
                line: Some(number),
                reason: "expected `key = value`".to_owned(),
            });
        };
        entries.push(ModelEntry {
            section: section.clone(),
            key: key.trim().to_owned(),
            value: value.trim().to_owned(),
            line: number,
        });
        if let Some(next) = next_section {
            section = next;
        }
    }
    Ok(entries)
}

/// What a refused model line should have said, in words an admin can act on.
fn expected_model_line(section: &str, key: &str, value: &str) -> String {
    match (section, key) {
        ("policy_effect", "e") => {
            format!("unsupported effect: only `e = {value}` (deny by default) is accepted")
        }
        ("matchers", "m") => format!(
            "unsupported matcher: only the shipped `m = {value}` is accepted (whitespace may differ)"
        ),
        _ => format!("unsupported definition in [{section}]: only `{key} = {value}` is accepted"),
    }
}

/// Checks that `model` is the shipped model up to comments and whitespace:
/// no duplicate key (Casbin would use the last one), no other effect, no
/// other matcher, no other request, policy or role definition, nothing more.
fn check_model(model: &str) -> Vec<PolicyError> {
    let model_error = |line: Option<usize>, reason: String| PolicyError {
        file: MODEL_FILE.to_owned(),
        line,
        reason,
    };
    let entries = match model_entries(model) {
        Ok(entries) => entries,
        Err(error) => return vec![error],
    };
    let shipped = match model_entries(SHIPPED_MODEL) {
        Ok(shipped) => shipped,
        Err(error) => return vec![error],
    };
    let mut errors = Vec::new();
    let mut seen: Vec<&ModelEntry> = Vec::new();
    for entry in &entries {
        if let Some(first) = seen
            .iter()
            .find(|s| s.section == entry.section && s.key == entry.key)
        {
            errors.push(model_error(
                Some(entry.line),
                format!(
                    "duplicate `{}` in [{}] (first on line {}); Casbin would use the last one",
                    entry.key, entry.section, first.line
                ),
            ));
            continue;
        }
        seen.push(entry);
        match shipped
            .iter()
            .find(|s| s.section == entry.section && s.key == entry.key)
        {
            Some(expected) if same_value(expected, &entry.value) => {}
            Some(expected) => errors.push(model_error(
                Some(entry.line),
                expected_model_line(&expected.section, &expected.key, &expected.value),
            )),
            None => errors.push(model_error(
                Some(entry.line),
                format!(
                    "unexpected `{}` in [{}]: the model holds only the shipped definitions",
                    entry.key, entry.section
                ),
            )),
        }
    }
    for expected in &shipped {
        if !seen
            .iter()
            .any(|s| s.section == expected.section && s.key == expected.key)
        {
            let what = if expected.section == "policy_effect" {
                "no policy effect".to_owned()
            } else {
                format!("missing `{}` in [{}]", expected.key, expected.section)
            };
            errors.push(model_error(
                None,
                format!("{what}: expected `{} = {}`", expected.key, expected.value),
            ));
        }
    }
    errors
}

/// Checks model and policy text against the objects a policy may name
/// (the GraphQL schema's `Type.field` coordinates, given by the caller),
/// offline. Used at start, on every reload and by `kluis policy check`.
pub fn check(
    model: &str,
    policy: &str,
    coordinates: &BTreeSet<String>,
) -> Result<CheckedPolicy, Vec<PolicyError>> {
    let mut errors = check_model(model);

    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let mut permissions = Vec::new();
    let mut file_assignments = Vec::new();
    for (index, raw) in policy.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        let error = |reason: String| PolicyError {
            file: POLICY_FILE.to_owned(),
            line: Some(line),
            reason,
        };
        match fields.as_slice() {
            ["p", role, object, action] => {
                if !roles.contains(role) {
                    errors.push(error(format!(
                        "unknown role `{role}` (known: {})",
                        roles.join(", ")
                    )));
                }
                if !coordinates.iter().any(|c| key_match(c, object)) {
                    errors.push(error(format!(
                        "`{object}` names nothing in the GraphQL schema"
                    )));
                }
                if !ACTIONS.contains(action) {
                    errors.push(error(format!(
                        "unknown action `{action}` (known: read, write, execute, *)"
                    )));
                }
                permissions.push(Permission {
                    line,
                    role: (*role).to_owned(),
                    object: (*object).to_owned(),
                    action: (*action).to_owned(),
                });
            }
            ["g", subject, role, venue] => {
                if !roles.contains(role) {
                    errors.push(error(format!("unknown role `{role}`")));
                }
                if subject.is_empty() || venue.is_empty() {
                    errors.push(error(
                        "a role assignment needs a subject and a venue (or *)".to_owned(),
                    ));
                }
                file_assignments.push((
                    (*subject).to_owned(),
                    (*role).to_owned(),
                    (*venue).to_owned(),
                ));
            }
            _ => errors.push(error(
                "expected `p, ROLE, OBJECT, ACTION` or `g, SUBJECT, ROLE, VENUE`".to_owned(),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let hash = hex::encode(Sha256::digest(format!("{model}\u{0}{policy}").as_bytes()));
    Ok(CheckedPolicy {
        model: model.to_owned(),
        permissions,
        file_assignments,
        hash,
    })
}

/// Reads and checks the two files of a policy folder.
pub fn check_dir(
    dir: &Path,
    coordinates: &BTreeSet<String>,
) -> Result<CheckedPolicy, Vec<PolicyError>> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            vec![PolicyError {
                file: name.to_owned(),
                line: None,
                reason: format!("cannot read {}: {e}", dir.join(name).display()),
            }]
        })
    };
    check(&read(MODEL_FILE)?, &read(POLICY_FILE)?, coordinates)
}

/// A policy in force: the enforcer and what it was built from.
pub struct Loaded {
    enforcer: Enforcer,
    pub hash: String,
    pub loaded_at: DateTime<Utc>,
    pub permissions: Vec<Permission>,
}

async fn build(
    policy: &CheckedPolicy,
    assignments: &[store::RoleAssignment],
) -> Result<Loaded, PolicyError> {
    let model_error = |e: casbin::Error| PolicyError {
        file: MODEL_FILE.to_owned(),
        line: None,
        reason: e.to_string(),
    };
    let model = DefaultModel::from_str(&policy.model)
        .await
        .map_err(model_error)?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
        .await
        .map_err(model_error)?;
    let rules: Vec<Vec<String>> = policy
        .permissions
        .iter()
        .map(|p| vec![p.role.clone(), p.object.clone(), p.action.clone()])
        .collect();
    if !rules.is_empty() {
        enforcer.add_policies(rules).await.map_err(model_error)?;
    }
    let mut grouping: Vec<Vec<String>> = policy
        .file_assignments
        .iter()
        .map(|(s, r, v)| vec![s.clone(), r.clone(), v.clone()])
        .collect();
    grouping.extend(
        assignments
            .iter()
            .map(|a| vec![a.subject.clone(), a.role.clone(), a.venue.clone()]),
    );
    grouping.sort();
    grouping.dedup();
    if !grouping.is_empty() {
        enforcer
            .add_grouping_policies(grouping)
            .await
            .map_err(model_error)?;
    }
    Ok(Loaded {
        enforcer,
        hash: policy.hash.clone(),
        loaded_at: Utc::now(),
        permissions: policy.permissions.clone(),
    })
}

/// What admins see of the policy in force (`policyStatus`).
#[derive(Debug, Clone)]
pub struct Status {
    pub hash: String,
    pub loaded_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

pub struct Authorizer {
    /// Allows everything without asking Casbin: only for measuring what the
    /// guards cost (`cargo bench -p api`).
    unrestricted: bool,
    dir: PathBuf,
    /// What the policy may name (see [`check`]).
    coordinates: Arc<BTreeSet<String>>,
    store: Store,
    current: RwLock<Arc<Loaded>>,
    status: RwLock<Status>,
    /// Role assignments as last loaded, and the database version they are.
    assignments_version: RwLock<i64>,
    /// Told when an edited policy is refused (set once the server runs).
    monitor: std::sync::OnceLock<crate::monitor::Monitor>,
}

fn join(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Authorizer {
    /// Loads the policy at start; a broken policy here stops the start.
    pub async fn load(
        dir: &Path,
        store: Store,
        coordinates: BTreeSet<String>,
    ) -> Result<Arc<Self>, crate::Error> {
        let checked =
            check_dir(dir, &coordinates).map_err(|errors| crate::Error::Policy(join(&errors)))?;
        let (version, assignments) = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                Ok::<_, store::StoreError>((store.authz_version()?, store.role_assignments()?))
            })
            .await
            .map_err(|e| crate::Error::Task(e.to_string()))??
        };
        let loaded = build(&checked, &assignments)
            .await
            .map_err(|error| crate::Error::Policy(error.to_string()))?;
        tracing::info!(hash = %&loaded.hash[..12], assignments = assignments.len(), "access policy loaded");
        Ok(Arc::new(Self {
            unrestricted: false,
            dir: dir.to_path_buf(),
            coordinates: Arc::new(coordinates),
            store,
            status: RwLock::new(Status {
                hash: loaded.hash.clone(),
                loaded_at: loaded.loaded_at,
                last_error: None,
                last_error_at: None,
            }),
            current: RwLock::new(Arc::new(loaded)),
            assignments_version: RwLock::new(version),
            monitor: std::sync::OnceLock::new(),
        }))
    }

    fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(loaded) => Arc::clone(&loaded),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn status(&self) -> Status {
        match self.status.read() {
            Ok(status) => status.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the files and the role assignments and swaps the policy in
    /// one step; on any error the old policy stays and the error is kept
    /// for `policyStatus`.
    pub async fn reload(&self) -> Result<(), String> {
        let outcome = async {
            let checked =
                check_dir(&self.dir, &self.coordinates).map_err(|errors| join(&errors))?;
            let store = self.store.clone();
            let (version, assignments) = tokio::task::spawn_blocking(move || {
                Ok::<_, store::StoreError>((store.authz_version()?, store.role_assignments()?))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            let loaded = build(&checked, &assignments)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((version, loaded))
        }
        .await;
        match outcome {
            Ok((version, loaded)) => {
                let changed = loaded.hash != self.current().hash;
                if let Ok(mut status) = self.status.write() {
                    status.hash = loaded.hash.clone();
                    status.loaded_at = loaded.loaded_at;
                    status.last_error = None;
                    status.last_error_at = None;
                }
                if changed {
                    tracing::info!(hash = %&loaded.hash[..12], "access policy reloaded");
                    if let Some(monitor) = self.monitor.get() {
                        monitor.policy_reloaded();
                    }
                }
                if let Ok(mut slot) = self.current.write() {
                    *slot = Arc::new(loaded);
                }
                if let Ok(mut seen) = self.assignments_version.write() {
                    *seen = version;
                }
                Ok(())
            }
            Err(reason) => {
                tracing::error!(dir = %self.dir.display(), %reason, "policy change refused; the previous policy stays in force");
                if let Some(monitor) = self.monitor.get().cloned() {
                    let _recorded =
                        tokio::task::spawn_blocking(move || monitor.policy_rejected(Utc::now()))
                            .await;
                }
                if let Ok(mut status) = self.status.write() {
                    status.last_error = Some(reason.clone());
                    status.last_error_at = Some(Utc::now());
                }
                Err(reason)
            }
        }
    }

    /// The same policy with every check answered "allowed" without asking
    /// Casbin: the baseline of the guard benchmark. Never used to serve.
    pub fn unrestricted_for_benchmarks(&self) -> Arc<Self> {
        Arc::new(Self {
            unrestricted: true,
            dir: self.dir.clone(),
            coordinates: Arc::clone(&self.coordinates),
            store: self.store.clone(),
            current: RwLock::new(self.current()),
            status: RwLock::new(self.status()),
            assignments_version: RwLock::new(0),
            monitor: std::sync::OnceLock::new(),
        })
    }

    /// Who hears about refused policy edits.
    pub fn set_monitor(&self, monitor: crate::monitor::Monitor) {
        let _already_set = self.monitor.set(monitor);
    }

    /// Whether `subject` may `action` on `object` in `venue`.
    pub fn allows(&self, subject: &str, venue: &str, object: &str, action: &str) -> bool {
        if self.unrestricted {
            return true;
        }
        self.current()
            .enforcer
            .enforce((subject, venue, object, action))
            .unwrap_or(false)
    }

    /// Watches the policy folder (file events, SIGHUP) and the database's
    /// role-assignment version, reloading on any change.
    pub fn watch(self: &Arc<Self>) {
        let (changed, mut notices) = tokio::sync::mpsc::channel::<()>(16);
        let file_events = changed.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ignored = file_events.try_send(());
            }
        });
        let watcher = match watcher {
            Ok(mut watcher) => {
                use notify::Watcher;
                match watcher.watch(&self.dir, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => Some(watcher),
                    Err(error) => {
                        tracing::warn!(%error, "cannot watch the policy folder; edits apply on SIGHUP");
                        None
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch the policy folder; edits apply on SIGHUP");
                None
            }
        };
        #[cfg(unix)]
        {
            let hangups = changed.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut hangup) = signal(SignalKind::hangup()) {
                    while hangup.recv().await.is_some() {
                        let _ignored = hangups.try_send(());
                    }
                }
            });
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _keep_watching = watcher;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let reload = tokio::select! {
                    Some(()) = notices.recv() => {
                        // Editors write in bursts; settle before reading.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        while notices.try_recv().is_ok() {}
                        true
                    }
                    _ = tick.tick() => this.assignments_changed().await,
                };
                if reload {
                    let _ignored = this.reload().await;
                }
            }
        });
    }

    /// Reloads now if role assignments changed since the last load (on this
    /// node or another), so that a role granted a moment ago counts on the
    /// very next request.
    pub async fn ensure_current(&self) {
        if self.assignments_changed().await {
            let _ignored = self.reload().await;
        }
    }

    async fn assignments_changed(&self) -> bool {
        let store = self.store.clone();
        let version = tokio::task::spawn_blocking(move || store.authz_version()).await;
        let seen = self.assignments_version.read().map(|v| *v).unwrap_or(0);
        matches!(version, Ok(Ok(version)) if version != seen)
    }

    /// The permission lines that decide a request, for `policy explain`.
    pub fn explain(
        &self,
        subject: &str,
        venue: &str,
        object: &str,
        action: &str,
    ) -> (bool, Vec<Permission>) {
        let loaded = self.current();
        let allowed = self.allows(subject, venue, object, action);
        let matching = loaded
            .permissions
            .iter()
            .filter(|p| key_match(object, &p.object) && (p.action == action || p.action == "*"))
            .filter(|p| {
                p.role == subject
                    || loaded
                        .enforcer
                        .has_role_for_user(subject, &p.role, Some(venue))
                    || loaded
                        .enforcer
                        .has_role_for_user(subject, &p.role, Some(EVERY_VENUE))
            })
            .cloned()
            .collect();
        (allowed, matching)
    }
}

/// The coordinates of the committed schema (`api/schema.graphql`), read
/// without a GraphQL parser: every field of every `type` block.
#[cfg(test)]
fn schema_coordinates() -> BTreeSet<String> {
    let sdl = include_str!("../../api/schema.graphql");
    let mut coordinates = BTreeSet::new();
    let mut current: Option<&str> = None;
    let mut depth = 0usize;
    let mut described = false;
    for line in sdl.lines() {
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("\"\"\"") {
            // A description: its own line of quotes opens or closes it.
            if !rest.ends_with("\"\"\"") {
                described = !described;
            }
            continue;
        }
        if described {
            continue;
        }
        if depth == 0 {
            current = text
                .strip_prefix("type ")
                .and_then(|rest| rest.split([' ', '{']).next());
        }
        if depth == 1
            && let Some(object) = current
            && let Some(name) = text.split(['(', ':']).next()
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            coordinates.insert(format!("{object}.{name}"));
        }
        depth += text.matches('{').count();
        depth = depth.saturating_sub(text.matches('}').count());
    }
    coordinates
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = include_str!("../../policies/model.conf");
    const POLICY: &str = include_str!("../../policies/policy.csv");

    #[test]
    fn the_shipped_policy_passes_its_own_check() {
        let checked = check(MODEL, POLICY, &schema_coordinates()).expect("valid");
        assert!(checked.permissions.len() > 10);
    }

    #[test]
    fn an_allow_all_effect_is_refused() {
        let model = MODEL.replace(
            "some(where (p.eft == allow))",
            "!some(where (p.eft == deny))",
        );
        let errors = check(&model, POLICY, &schema_coordinates()).expect_err("refused");
        assert!(
            errors[0].to_string().starts_with("model.conf:"),
            "{errors:?}"
        );
        assert!(errors[0].reason.contains("unsupported effect"));
    }

    const MATCHER: &str = "m = (r.sub == p.sub || g(r.sub, p.sub, r.dom) || g(r.sub, p.sub, \"*\")) && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == \"*\")";

    fn reasons(model: &str) -> Vec<String> {
        check(model, POLICY, &schema_coordinates())
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Whether Casbin, given this model, lets a stranger read guests' e-mail.
    async fn lets_anyone_read_emails(model: &str) -> bool {
        let Ok(model) = DefaultModel::from_str(model).await else {
            return false;
        };
        let Ok(mut enforcer) = Enforcer::new(model, MemoryAdapter::default()).await else {
            return false;
        };
        let _added = enforcer
            .add_policy(vec![
                "admin".to_owned(),
                "Query.auditLog".to_owned(),
                "read".to_owned(),
            ])
            .await;
        enforcer
            .enforce(("anonymous", "venue-a", "Reservation.guestEmail", "read"))
            .unwrap_or(false)
    }

    #[test]
    fn the_shipped_model_is_found_in_the_shipped_file() {
        assert!(MODEL.contains(MATCHER), "the test's matcher is out of date");
    }

    #[tokio::test]
    async fn a_second_effect_below_the_first_is_refused_as_a_duplicate() {
        let model = format!("{MODEL}\n[policy_effect]\ne = !some(where (p.eft == deny))\n");
        assert!(
            lets_anyone_read_emails(&model).await,
            "the edit this guards against must really open everything"
        );
        let errors = reasons(&model);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("duplicate `e` in [policy_effect]")),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn a_second_matcher_is_refused_as_a_duplicate() {
        let model = format!("{MODEL}\nm = true\n");
        assert!(lets_anyone_read_emails(&model).await);
        let errors = reasons(&model);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("model.conf:") && e.contains("duplicate `m` in [matchers]")),
            "{errors:?}"
        );
    }

    #[test]
    fn duplicate_definitions_in_any_section_are_refused() {
        for (section, line) in [
            ("[request_definition]", "r = sub, dom, obj, act"),
            ("[policy_definition]", "p = sub, obj, act"),
            ("[role_definition]", "g = _, _, _"),
        ] {
            let model = MODEL.replace(section, &format!("{section}\n{line}"));
            let errors = reasons(&model);
            assert!(
                errors.iter().any(|e| e.contains("duplicate")),
                "{section}: {errors:?}"
            );
        }
    }

    #[test]
    fn a_deny_effect_is_refused() {
        for effect in [
            "some(where (p.eft == deny))",
            "!some(where (p.eft == deny))",
            "some(where (p.eft == allow)) && !some(where (p.eft == deny))",
            "priority(p.eft) || deny",
        ] {
            let model = MODEL.replace("some(where (p.eft == allow))", effect);
            let errors = reasons(&model);
            assert!(
                errors.iter().any(|e| e.contains("unsupported effect")),
                "{effect}: {errors:?}"
            );
        }
    }

    #[test]
    fn an_allow_effect_casbin_would_not_recognise_is_refused() {
        // Casbin matches the effect as text and panics at the first
        // request on any other spelling.
        let model = MODEL.replace(
            "e = some(where (p.eft == allow))",
            "e = some(where(p.eft==allow))",
        );
        let errors = reasons(&model);
        assert!(
            errors.iter().any(|e| e.contains("unsupported effect")),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn a_matcher_of_true_is_refused() {
        let model = MODEL.replace(MATCHER, "m = true");
        assert!(lets_anyone_read_emails(&model).await);
        let errors = reasons(&model);
        assert!(
            errors.iter().any(|e| e.contains("unsupported matcher")),
            "{errors:?}"
        );
    }

    #[test]
    fn an_altered_matcher_is_refused() {
        for matcher in [
            MATCHER.replace("keyMatch(r.obj, p.obj)", "true"),
            MATCHER.replace(" && (r.act == p.act || p.act == \"*\")", ""),
            MATCHER.replace("g(r.sub, p.sub, r.dom)", "g(r.sub, p.sub, p.sub)"),
            MATCHER.replace("\"*\"", "\" *\""),
            format!("{MATCHER} || r.sub == \"anonymous\""),
            MATCHER.replace("m =", "m = \\\n true || "),
        ] {
            let model = MODEL.replace(MATCHER, &matcher);
            let errors = reasons(&model);
            assert!(
                errors.iter().any(|e| e.contains("unsupported matcher")),
                "{matcher}: {errors:?}"
            );
        }
    }

    #[test]
    fn other_request_policy_and_role_definitions_are_refused() {
        for (from, to) in [
            ("r = sub, dom, obj, act", "r = sub, obj, act"),
            ("p = sub, obj, act", "p = sub, obj, act, eft"),
            ("g = _, _, _", "g = _, _"),
        ] {
            let errors = reasons(&MODEL.replace(from, to));
            assert!(
                errors.iter().any(|e| e.contains("unsupported definition")),
                "{to}: {errors:?}"
            );
        }
    }

    #[test]
    fn extra_keys_sections_and_missing_ones_are_refused() {
        let errors = reasons(&format!("{MODEL}\n[role_definition]\ng2 = _, _\n"));
        assert!(
            errors.iter().any(|e| e.contains("unexpected `g2`")),
            "{errors:?}"
        );
        let errors = reasons(&MODEL.replace("[matchers]", "[Matchers]"));
        assert!(
            errors.iter().any(|e| e.contains("missing `m`")),
            "{errors:?}"
        );
        let errors = reasons(&MODEL.replace("e = some(where (p.eft == allow))", ""));
        assert!(
            errors.iter().any(|e| e.contains("no policy effect")),
            "{errors:?}"
        );
        let errors = reasons(&format!("{MODEL}\nnot a definition\n"));
        assert!(
            errors.iter().any(|e| e.contains("expected `key = value`")),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn the_shipped_model_laid_out_differently_is_accepted_and_enforced() {
        let model = MODEL
            .replace(
                "e = some(where (p.eft == allow))",
                "e   =   some(where (p.eft == allow))",
            )
            .replace("r = sub, dom, obj, act", "r = sub,dom,obj,act")
            .replace(" && keyMatch", " \\\n    && keyMatch")
            .replace(
                "[matchers]",
                "; the matcher, split over two lines\n[matchers]",
            );
        let checked = check(&model, POLICY, &schema_coordinates()).expect("the same model");
        let loaded = build(&checked, &[]).await.expect("builds");
        assert!(
            loaded
                .enforcer
                .enforce((
                    "anonymous",
                    "venue-a",
                    "Mutation.createReservation",
                    "execute"
                ))
                .unwrap_or(false)
        );
        assert!(!lets_anyone_read_emails(&model).await);
    }

    #[test]
    fn unknown_objects_actions_and_roles_name_their_line() {
        let policy = "# comment\np, staff, Reservation.creditCard, read\np, staff, Query.reservation, peek\np, cook, Query.reservation, read\nnonsense\n";
        let errors: Vec<String> = check(MODEL, policy, &schema_coordinates())
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].starts_with("policy.csv:2: `Reservation.creditCard` names nothing"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("policy.csv:3: unknown action `peek`"),
            "{errors:?}"
        );
        assert!(
            errors[2].starts_with("policy.csv:4: unknown role `cook`"),
            "{errors:?}"
        );
        assert!(
            errors[3].starts_with("policy.csv:5: expected"),
            "{errors:?}"
        );
    }

    #[test]
    fn wildcards_must_match_something() {
        assert!(
            check(
                MODEL,
                "p, admin, Reservation.*, read\n",
                &schema_coordinates()
            )
            .is_ok()
        );
        assert!(check(MODEL, "p, admin, Nothing.*, read\n", &schema_coordinates()).is_err());
    }

    #[test]
    fn the_schema_names_the_personal_fields() {
        let coordinates = schema_coordinates();
        for field in [
            "Reservation.guestName",
            "Reservation.guestEmail",
            "Mutation.createReservation",
            "Query.reservation",
        ] {
            assert!(coordinates.contains(field), "{field}");
        }
    }
}

#[cfg(test)]
mod enforcement_tests {
    use super::*;

    fn assignment(subject: &str, role: &str, venue: &str) -> store::RoleAssignment {
        store::RoleAssignment {
            subject: subject.to_owned(),
            role: role.to_owned(),
            venue: venue.to_owned(),
        }
    }

    async fn loaded(assignments: &[store::RoleAssignment]) -> Loaded {
        let policy = check(
            include_str!("../../policies/model.conf"),
            include_str!("../../policies/policy.csv"),
            &schema_coordinates(),
        )
        .expect("valid");
        build(&policy, assignments).await.expect("builds")
    }

    fn allows(loaded: &Loaded, sub: &str, dom: &str, obj: &str, act: &str) -> bool {
        loaded
            .enforcer
            .enforce((sub, dom, obj, act))
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn an_admin_of_every_venue_may_read_in_any_venue() {
        let loaded = loaded(&[assignment("user:1", "admin", "*")]).await;
        assert!(allows(
            &loaded,
            "user:1",
            "venue-a",
            "Query.reservation",
            "read"
        ));
        assert!(allows(
            &loaded,
            "user:1",
            "*",
            "Mutation.createStaff",
            "execute"
        ));
    }

    #[tokio::test]
    async fn staff_of_one_venue_read_names_there_and_nothing_elsewhere() {
        let loaded = loaded(&[assignment("user:2", "staff", "venue-a")]).await;
        assert!(allows(
            &loaded,
            "user:2",
            "venue-a",
            "Reservation.guestName",
            "read"
        ));
        assert!(!allows(
            &loaded,
            "user:2",
            "venue-a",
            "Reservation.guestEmail",
            "read"
        ));
        assert!(!allows(
            &loaded,
            "user:2",
            "venue-b",
            "Reservation.guestName",
            "read"
        ));
    }

    #[tokio::test]
    async fn anonymous_may_book_but_not_read_reservations() {
        let loaded = loaded(&[]).await;
        assert!(allows(
            &loaded,
            "anonymous",
            "venue-a",
            "Mutation.createReservation",
            "execute"
        ));
        assert!(!allows(
            &loaded,
            "anonymous",
            "venue-a",
            "Query.reservation",
            "read"
        ));
    }
}
