//! Reading `terraform show -json PLANFILE` (also OpenTofu's): the parts
//! plan rules need, checked, with the file and JSON position of anything
//! malformed.
//!
//! The format is Terraform's "JSON Output Format", `format_version` 1.x: a
//! minor version only adds fields (ignored here), a major version other than
//! 1 is rejected, as Terraform asks consumers to do.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A plan JSON that cannot be judged: unreadable, not JSON, or not shaped
/// like Terraform's plan output.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{source_name}{}: {message}", position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
#[diagnostic(
    code(opsguard::plan),
    help("pass the output of `terraform show -json PLANFILE` (or `tofu show -json PLANFILE`): `terraform plan -out tfplan && terraform show -json tfplan > plan.json && opsguard plan plan.json`")
)]
pub struct PlanError {
    /// The file, or `<stdin>`.
    pub source_name: String,
    /// Line and column (1-based) in the JSON, where known.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

/// What the plan says, as far as rules care.
#[derive(Debug, Default)]
pub struct Plan {
    pub format_version: String,
    pub terraform_version: String,
    pub changes: Vec<ResourceChange>,
    /// Provisioners by configuration address (`module.a.module.b.TYPE.NAME`,
    /// module instance keys removed).
    pub provisioners: BTreeMap<String, Vec<Provisioner>>,
    /// 1-based line of each `resource_changes[]` entry's address, for locations.
    pub lines: BTreeMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct ResourceChange {
    pub address: String,
    pub module_address: Option<String>,
    pub mode: String,
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
    pub before: Value,
    pub after: Value,
    pub after_unknown: Value,
    pub before_sensitive: Value,
    pub after_sensitive: Value,
}

#[derive(Debug, Clone)]
pub struct Provisioner {
    /// `local-exec`, `remote-exec`, `file`, …
    pub kind: String,
    /// The command as written, where it is a constant; else what it refers to.
    pub command: String,
}

impl ResourceChange {
    /// The address of this resource in the configuration: module instance
    /// keys and the resource's own index removed.
    pub fn config_address(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.module_address {
            parts.push(strip_instance_keys(m));
        }
        if self.mode == "data" {
            parts.push(format!("data.{}.{}", self.resource_type, self.name));
        } else {
            parts.push(format!("{}.{}", self.resource_type, self.name));
        }
        parts.join(".")
    }
}

/// `module.a["x"].module.b[0]` → `module.a.module.b`.
fn strip_instance_keys(addr: &str) -> String {
    let mut out = String::with_capacity(addr.len());
    let mut depth = 0usize;
    let mut quoted = false;
    for c in addr.chars() {
        match c {
            '"' if depth > 0 => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[derive(Deserialize)]
struct RawPlan {
    format_version: String,
    #[serde(default)]
    terraform_version: String,
    #[serde(default)]
    resource_changes: Vec<RawChange>,
    #[serde(default)]
    configuration: Option<RawConfiguration>,
}

#[derive(Deserialize)]
struct RawChange {
    address: String,
    #[serde(default)]
    module_address: Option<String>,
    #[serde(default = "managed")]
    mode: String,
    #[serde(rename = "type")]
    resource_type: String,
    name: String,
    change: RawChangeBody,
}

fn managed() -> String {
    "managed".into()
}

#[derive(Deserialize)]
struct RawChangeBody {
    actions: Vec<Action>,
    #[serde(default)]
    before: Value,
    #[serde(default)]
    after: Value,
    #[serde(default)]
    after_unknown: Value,
    #[serde(default)]
    before_sensitive: Value,
    #[serde(default)]
    after_sensitive: Value,
}

/// Terraform's change actions (`forget` since Terraform 1.7).
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Action {
    NoOp,
    Create,
    Read,
    Update,
    Delete,
    Forget,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Forget => "forget",
        }
    }
}

#[derive(Deserialize)]
struct RawConfiguration {
    #[serde(default)]
    root_module: RawModule,
}

#[derive(Deserialize, Default)]
struct RawModule {
    #[serde(default)]
    resources: Vec<RawConfigResource>,
    #[serde(default)]
    module_calls: BTreeMap<String, RawModuleCall>,
}

#[derive(Deserialize)]
struct RawModuleCall {
    #[serde(default)]
    module: RawModule,
}

#[derive(Deserialize)]
struct RawConfigResource {
    address: String,
    #[serde(default)]
    provisioners: Vec<RawProvisioner>,
}

#[derive(Deserialize)]
struct RawProvisioner {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    expressions: BTreeMap<String, Value>,
}

/// Parse a plan. `source_name` is what errors name (the path, or `<stdin>`).
pub fn parse(text: &str, source_name: &str) -> Result<Plan, PlanError> {
    let err = |position, message: String| PlanError {
        source_name: source_name.to_owned(),
        position,
        message,
    };
    if text.trim().is_empty() {
        return Err(err(None, "empty input: no plan JSON to read".into()));
    }
    // serde_json positions data errors (a missing field, a wrong type, an
    // unknown action) as well as syntax errors.
    let raw: RawPlan = serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "not valid JSON"
            }
            _ => "not a Terraform plan",
        };
        let message = strip_position(&e.to_string());
        err(Some((e.line(), e.column())), format!("{what}: {message}"))
    })?;
    let major = raw.format_version.split('.').next().unwrap_or("");
    if major != "1" {
        let at = find_line(text, "\"format_version\"").map(|l| (l, 1));
        return Err(err(
            at,
            format!(
                "format_version {:?} is not supported: opsguard reads Terraform's JSON plan format 1.x",
                raw.format_version
            ),
        ));
    }
    let mut plan = Plan {
        format_version: raw.format_version,
        terraform_version: raw.terraform_version,
        ..Plan::default()
    };
    for c in raw.resource_changes {
        if c.change.actions.is_empty() {
            let at = find_line(text, &format!("{:?}", c.address)).map(|l| (l, 1));
            return Err(err(
                at,
                format!("resource change {} has no actions", c.address),
            ));
        }
        if let Some(line) = find_line(text, &format!("{:?}", c.address)) {
            plan.lines.entry(c.address.clone()).or_insert(line);
        }
        plan.changes.push(ResourceChange {
            address: c.address,
            module_address: c.module_address,
            mode: c.mode,
            resource_type: c.resource_type,
            name: c.name,
            actions: c
                .change
                .actions
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            before: c.change.before,
            after: c.change.after,
            after_unknown: c.change.after_unknown,
            before_sensitive: c.change.before_sensitive,
            after_sensitive: c.change.after_sensitive,
        });
    }
    if let Some(config) = raw.configuration {
        collect_provisioners(&config.root_module, "", &mut plan.provisioners);
    }
    Ok(plan)
}

fn collect_provisioners(
    module: &RawModule,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<Provisioner>>,
) {
    for r in &module.resources {
        if r.provisioners.is_empty() {
            continue;
        }
        let list = r
            .provisioners
            .iter()
            .map(|p| Provisioner {
                kind: p.kind.clone(),
                command: provisioner_command(p),
            })
            .collect();
        out.insert(format!("{prefix}{}", r.address), list);
    }
    for (name, call) in &module.module_calls {
        collect_provisioners(&call.module, &format!("{prefix}module.{name}."), out);
    }
}

/// What a provisioner runs: `command` (local-exec), `inline`/`script`/
/// `scripts` (remote-exec), as constants where Terraform knows them, else
/// `(computed from …)`.
fn provisioner_command(p: &RawProvisioner) -> String {
    let mut parts = Vec::new();
    for key in ["command", "inline", "script", "scripts"] {
        let Some(expr) = p.expressions.get(key) else {
            continue;
        };
        if let Some(v) = expr.get("constant_value") {
            match v {
                Value::String(s) => parts.push(s.clone()),
                Value::Array(items) => parts.extend(items.iter().map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| i.to_string())
                })),
                other => parts.push(other.to_string()),
            }
        } else if let Some(refs) = expr.get("references").and_then(Value::as_array) {
            let refs: Vec<&str> = refs.iter().filter_map(Value::as_str).collect();
            parts.push(format!("(computed from {})", refs.join(", ")));
        } else {
            parts.push("(computed)".into());
        }
    }
    if parts.is_empty() {
        "(no command)".into()
    } else {
        parts.join("; ")
    }
}

/// serde_json appends " at line L column C"; the position is said apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn find_line(text: &str, needle: &str) -> Option<usize> {
    let at = text.find(needle)?;
    Some(text[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_instance_keys_are_removed() {
        assert_eq!(
            strip_instance_keys(r#"module.a["x[1]"].module.b[0]"#),
            "module.a.module.b"
        );
    }

    #[test]
    fn malformed_json_names_its_position() {
        let e = parse(
            "{\n  \"format_version\": \"1.2\",\n  \"resource_changes\": [ }",
            "p.json",
        )
        .unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3));
        assert!(e.message.starts_with("not valid JSON"), "{}", e.message);
        assert!(e.to_string().starts_with("p.json:3:"), "{e}");
    }

    #[test]
    fn a_wrong_shape_names_its_position() {
        let text = "{\"format_version\": \"1.0\",\n\"resource_changes\": [{\"address\": \"a.b\", \"type\": \"a\", \"name\": \"b\",\n\"change\": {\"actions\": [\"explode\"]}}]}";
        let e = parse(text, "p.json").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
        assert!(e.message.contains("explode"), "{}", e.message);
    }

    #[test]
    fn an_unknown_major_version_is_rejected() {
        let e = parse("{\"format_version\": \"2.0\"}", "p.json").unwrap_err();
        assert!(e.message.contains("2.0"), "{}", e.message);
    }

    #[test]
    fn provisioners_are_read_through_module_calls() {
        let text = r#"{"format_version": "1.2", "configuration": {"root_module": {
          "resources": [{"address": "null_resource.users", "provisioners": [
            {"type": "local-exec", "expressions": {"command": {"constant_value": "python3 users.py"}}}]}],
          "module_calls": {"search": {"source": "./m", "module": {"resources": [
            {"address": "terraform_data.run", "provisioners": [
              {"type": "remote-exec", "expressions": {"inline": {"references": ["var.cmd"]}}}]}]}}}}}}"#;
        let plan = parse(text, "p.json").unwrap();
        assert_eq!(
            plan.provisioners["null_resource.users"][0].command,
            "python3 users.py"
        );
        assert_eq!(
            plan.provisioners["module.search.terraform_data.run"][0].command,
            "(computed from var.cmd)"
        );
    }
}
