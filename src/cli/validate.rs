//! `opsguard validate`: load everything a run would load — the config, the
//! presence of the credentials and files it names, the rules (built-in and
//! the user's) and the waivers — without touching the environment: no
//! network, no secret value read into any output, nothing written (not even
//! the state folder). Every problem is listed, not only the first; exit 0
//! when all of it loads, 2 otherwise.
//!
//! What validate cannot know without a network (a `password_secret` in
//! Secrets Manager, the AWS credential chain, whether a role can be
//! assumed) is said as a note, never claimed as checked.

use crate::config::{Config, Waiver};
use crate::exit;
use crate::rules::RuleSet;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ValidateArgs {}

pub const EXIT_CODES: &str = "\
Exit codes:
  0   everything a run loads, loads: the config, the credentials it names,
      the rules and the waivers (no network is used)
  2   at least one problem; every one is listed";

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub status: Status,
    pub what: &'static str,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Not checked, or not a problem yet (created on first use).
    Note,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Note => "note",
            Status::Fail => "FAIL",
        }
    }
}

/// A problem found by validate itself (the config's and the rules' own
/// errors keep their own diagnostics).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(opsguard::validate), help("{help}"))]
pub struct Problem {
    pub message: String,
    pub help: String,
}

/// What validate found: the checklist, and each problem rendered in the
/// project's error style.
#[derive(Debug, Default)]
pub struct Validation {
    pub items: Vec<Item>,
    pub problems: Vec<String>,
}

impl Validation {
    fn ok(&mut self, what: &'static str, detail: String) {
        self.items.push(Item {
            status: Status::Ok,
            what,
            detail,
        });
    }
    fn note(&mut self, what: &'static str, detail: String) {
        self.items.push(Item {
            status: Status::Note,
            what,
            detail,
        });
    }
    fn fail(
        &mut self,
        what: &'static str,
        detail: String,
        e: impl miette::Diagnostic + Send + Sync + 'static,
    ) {
        self.items.push(Item {
            status: Status::Fail,
            what,
            detail,
        });
        let text = format!("{:?}", miette::Report::new(e));
        self.problems.push(text.trim_end().to_owned());
    }
}

/// Run `validate` on the config at `path`, writing to stderr.
pub fn execute(path: &Path, _args: ValidateArgs) -> u8 {
    let env = |k: &str| std::env::var(k).ok();
    let v = validate(path, &env, time::OffsetDateTime::now_utc().date());
    let mut err = std::io::stderr().lock();
    let _ = write(path, &v, &mut err);
    code(&v)
}

/// 0 when nothing failed, 2 otherwise.
pub fn code(v: &Validation) -> u8 {
    if v.problems.is_empty() {
        exit::OK
    } else {
        exit::USAGE
    }
}

/// The checks, in the order a run meets them.
pub fn validate(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    today: time::Date,
) -> Validation {
    let mut v = Validation::default();
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(source) => {
            v.fail(
                "config",
                format!("{shown} cannot be read"),
                Problem {
                    message: format!("cannot read the config {shown}: {source}"),
                    help: "name it with --config PATH or $OPSGUARD_CONFIG; `opsguard init` writes a first one".into(),
                },
            );
            None
        }
    };
    // The form, with every variable taken as set and no waiver taken as
    // expired: those two are checked one by one below, so that each is
    // listed.
    let set = |_: &str| Some("set".to_owned());
    let earliest = time::Date::MIN;
    let config = text
        .as_deref()
        .and_then(|text| match Config::parse(path, text, &set, earliest) {
            Ok(c) => {
                v.ok("config", format!("{shown}: every key and value"));
                Some(c)
            }
            Err(e) => {
                v.fail("config", format!("{shown} does not load"), e);
                None
            }
        });
    if let (Some(config), Some(text)) = (&config, &text) {
        credentials(&mut v, config, text, env, path);
        files(&mut v, config, env);
    }

    // The rules: each directory apart, so each broken one is listed.
    let dirs: Vec<PathBuf> = config
        .as_ref()
        .map(|c| c.rules.paths.clone())
        .unwrap_or_default();
    let mut loaded: Vec<PathBuf> = Vec::new();
    let builtin = match RuleSet::builtin() {
        Ok(r) => r.rules().len(),
        Err(e) => {
            v.fail("rules", "the built-in pack does not load".into(), e);
            0
        }
    };
    for dir in &dirs {
        match RuleSet::load(std::slice::from_ref(dir)) {
            Ok(_) => loaded.push(dir.clone()),
            Err(e) => v.fail("rules", format!("{} does not load", dir.display()), e),
        }
    }
    let rules = match RuleSet::load(&loaded) {
        Ok(r) => Some(r),
        Err(e) => {
            v.fail(
                "rules",
                "the rule directories do not load together".into(),
                e,
            );
            None
        }
    };
    if let Some(rules) = &rules {
        if loaded.len() == dirs.len() {
            let user = rules.rules().iter().filter(|r| !r.is_builtin()).count();
            v.ok(
                "rules",
                match dirs.len() {
                    0 => format!("{} built-in", builtin),
                    _ => format!(
                        "{} in force: {builtin} built-in, {user} from [rules] paths ({} overriding a built-in)",
                        rules.rules().len(),
                        rules.rules().iter().filter(|r| r.overrides.is_some()).count()
                    ),
                },
            );
        }
    }
    if config.is_none() && text.is_some() {
        v.note(
            "rules",
            "[rules] paths, credentials and waivers not checked: the config does not load".into(),
        );
    }

    // The waivers: each expired one, each naming no rule in force.
    if let Some(config) = &config {
        waivers(&mut v, &config.waivers, rules.as_ref(), today);
    }
    v
}

/// The credential opsguard itself uses, by the name the config gives it.
fn credentials(
    v: &mut Validation,
    config: &Config,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    path: &Path,
) {
    let raw: toml::Table = toml::from_str(text).unwrap_or_default();
    let es = raw.get("elasticsearch").and_then(|e| e.as_table());
    let key = |k: &str| es.and_then(|e| e.get(k)).and_then(|x| x.as_str());
    let named = key("password_env")
        .map(|n| ("password_env", n))
        .or_else(|| key("api_key_env").map(|n| ("api_key_env", n)));
    if let Some((field, name)) = named {
        // The same reading a run makes, so the error is the one it would give.
        match Config::parse(path, text, env, time::Date::MIN) {
            Ok(_) => v.ok(
                "credential",
                format!("[elasticsearch] {field}: {name} is set (its value is not shown)"),
            ),
            Err(e) => v.fail(
                "credential",
                format!("[elasticsearch] {field}: {name} is not usable"),
                e,
            ),
        }
    }
    if let Some(secret) = key("password_secret") {
        v.note(
            "credential",
            format!(
                "[elasticsearch] password_secret: {secret} is read from Secrets Manager when a snapshot starts; not checked (no network)"
            ),
        );
    }
    if let Some(ca) = &config.elasticsearch.ca_cert {
        match std::fs::File::open(ca) {
            Ok(_) => v.ok(
                "ca_cert",
                format!("[elasticsearch] ca_cert: {} is readable", ca.display()),
            ),
            Err(e) => v.fail(
                "ca_cert",
                format!("[elasticsearch] ca_cert: {} cannot be read", ca.display()),
                Problem {
                    message: format!(
                        "[elasticsearch] ca_cert {} cannot be read: {e}",
                        ca.display()
                    ),
                    help: "ca_cert is relative to the config file: name a PEM bundle that exists"
                        .into(),
                },
            ),
        }
    }
}

/// AWS credentials, the fingerprint key, the plan file: present or not,
/// never read into any output.
fn files(v: &mut Validation, config: &Config, env: &dyn Fn(&str) -> Option<String>) {
    match &config.aws.profile {
        Some(profile) => {
            let home = env("HOME").map(PathBuf::from).unwrap_or_default();
            let files = [
                env("AWS_CONFIG_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join(".aws/config")),
                env("AWS_SHARED_CREDENTIALS_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join(".aws/credentials")),
            ];
            let headers = [format!("[profile {profile}]"), format!("[{profile}]")];
            let found = files.iter().find(|f| {
                std::fs::read_to_string(f).is_ok_and(|t| {
                    t.lines()
                        .any(|l| headers.iter().any(|h| l.trim() == h.as_str()))
                })
            });
            match found {
                Some(f) => v.ok(
                    "aws",
                    format!("[aws] profile {profile}: found in {}", f.display()),
                ),
                None => v.fail(
                    "aws",
                    format!("[aws] profile {profile}: in no shared AWS file"),
                    Problem {
                        message: format!(
                            "[aws] profile {profile} is in neither {} nor {}",
                            files[0].display(),
                            files[1].display()
                        ),
                        help: "configure it (`aws configure --profile NAME`), or set AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, or remove [aws] profile to use the standard chain".into(),
                    },
                ),
            }
        }
        None => v.note(
            "aws",
            format!(
                "the standard AWS credential chain ({}); whether it answers is checked when a run starts (no network here)",
                if env("AWS_ACCESS_KEY_ID").is_some_and(|k| !k.is_empty()) {
                    "AWS_ACCESS_KEY_ID is set"
                } else {
                    "no AWS_ACCESS_KEY_ID: profiles, SSO or instance metadata"
                }
            ),
        ),
    }

    let state = super::state_dir(config);
    let key_file = state.join(crate::state::FINGERPRINT_KEY);
    if env(crate::snapshot::fingerprint::KEY_ENV).is_some_and(|k| !k.is_empty()) {
        v.ok(
            "fingerprint key",
            format!(
                "{} is set (its value is not shown)",
                crate::snapshot::fingerprint::KEY_ENV
            ),
        );
    } else {
        match std::fs::metadata(&key_file) {
            Ok(m) if m.len() >= 16 && std::fs::File::open(&key_file).is_ok() => v.ok(
                "fingerprint key",
                format!("{} is readable", key_file.display()),
            ),
            Ok(_) => v.fail(
                "fingerprint key",
                format!("{} is unusable", key_file.display()),
                Problem {
                    message: format!(
                        "the fingerprint key {} cannot be read or is shorter than 16 bytes",
                        key_file.display()
                    ),
                    help: "snapshots are only comparable under the same key: restore the file from where you keep it, or set OPSGUARD_FINGERPRINT_KEY".into(),
                },
            ),
            Err(_) => v.note(
                "fingerprint key",
                format!(
                    "{} is not there yet: the first run creates it",
                    key_file.display()
                ),
            ),
        }
    }

    if let Some(crate::config::PlanConfig::File(plan)) = &config.plan {
        if plan.is_file() {
            v.ok("plan", format!("[plan] file {} is there", plan.display()));
        } else {
            v.note(
                "plan",
                format!(
                    "[plan] file {} is not there (yet): `opsguard plan` needs it",
                    plan.display()
                ),
            );
        }
    }
}

fn waivers(v: &mut Validation, waivers: &[Waiver], rules: Option<&RuleSet>, today: time::Date) {
    let mut bad = 0;
    for w in waivers {
        if w.expires < today {
            bad += 1;
            v.fail(
                "waiver",
                format!("{} on {}: expired on {}", w.rule, w.target, w.expires),
                Problem {
                    message: format!(
                        "{}: waiver for rule `{}` on `{}` expired on {}",
                        w.location, w.rule, w.target, w.expires
                    ),
                    help: "an expired waiver is an error, not a silent pass: fix the cause, or renew the waiver with a reason".into(),
                },
            );
        }
        if let Some(rules) = rules {
            if let Err(e) = rules.check_waivers(std::slice::from_ref(w)) {
                bad += 1;
                v.fail(
                    "waiver",
                    format!("{} on {}: no such rule in force", w.rule, w.target),
                    e,
                );
            }
        }
    }
    if bad == 0 && !waivers.is_empty() {
        v.ok(
            "waivers",
            format!(
                "{}: none expired, each names a rule in force",
                waivers.len()
            ),
        );
    }
}

/// The checklist, then each problem in full, then the verdict.
pub fn write(path: &Path, v: &Validation, out: &mut dyn Write) -> std::io::Result<()> {
    let mut t = format!("opsguard validate {} (no network used)\n", path.display());
    let width = v.items.iter().map(|i| i.what.len()).max().unwrap_or(0);
    for i in &v.items {
        t.push_str(&format!(
            "  {:<4}  {:<width$}  {}\n",
            i.status.word(),
            i.what,
            i.detail
        ));
    }
    for p in &v.problems {
        t.push('\n');
        t.push_str(p);
        t.push('\n');
    }
    t.push('\n');
    match v.problems.len() {
        0 => t.push_str("valid: everything a run loads, loads\n"),
        1 => t.push_str("1 problem: a run would stop at it (exit 2)\n"),
        n => t.push_str(&format!(
            "{n} problems: a run would stop at the first (exit 2)\n"
        )),
    }
    out.write_all(crate::report::escape::lines(&t, 4096).as_bytes())?;
    out.flush()
}
