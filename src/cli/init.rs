//! `opsguard init`: a first `opsguard.toml`, written from what AWS shows.
//!
//! It lists the ECS clusters (or takes `--cluster`), their services and the
//! task definitions those run (see [`crate::providers::discovery`]), then
//! pairs each container's secret variables by name into the
//! `[[credentials]]` entries the config needs:
//!
//! * a name ending in `username`/`user`/`login` and one ending in
//!   `password`/`pass`/`passwd`/`pwd` with the same stem (`es_username` +
//!   `es_password`), or the only two such names of a container →
//!   `elasticsearch-basic`;
//! * a name containing `api_key`/`apikey`/`api-key` → `elasticsearch-api-key`;
//! * a variable that reads one key of a JSON secret (`…:password::`) needs no
//!   configuration — opsguard resolves JSON keys itself — and the comment says
//!   so; a variable holding a whole JSON object cannot be told from its name,
//!   so the other secret variables are listed with how to declare one.
//!
//! Nothing is guessed silently: every line a person must supply is marked
//! `FILL IN`, every guess `CHECK`, and the file loads as it is written
//! (`opsguard rules list --config FILE`). It never reads a secret value.

use crate::config::AwsConfig;
use crate::model::value_from::{self, ValueFrom};
use crate::providers::discovery::{self, Discovery, SecretLookup};
use crate::providers::{Calls, ProviderError};
use clap::Args;
use miette::Diagnostic;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const EXIT_CODES: &str = "\
Exit codes:
  0   the config was written
  2   the file exists (pass --force), or it cannot be written
  13  AWS could not be read (credentials, region, permissions) or shows no
      ECS cluster; nothing was written";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config (default: the --config path, ./opsguard.toml);
    /// `-` for standard output.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,

    /// Only this ECS cluster (repeat for more); default: every active cluster
    /// in the region.
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,

    /// The AWS region (default: the standard chain: AWS_REGION, the profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// An AWS endpoint (an emulator, a VPC endpoint); written to the config.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// A named profile of the shared AWS config files; written to the config.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(Debug, Error, Diagnostic)]
pub enum InitError {
    #[error("{} exists already", path.display())]
    #[diagnostic(
        code(opsguard::init::exists),
        help("pass --force to overwrite it, or -o PATH to write the new config elsewhere (-o - prints it)")
    )]
    Exists { path: PathBuf },

    #[error("cannot read AWS: {0}")]
    #[diagnostic(
        code(opsguard::init::aws),
        help("init only reads (ecs:ListClusters, DescribeClusters, ListServices, DescribeServices, ListTasks, DescribeTasks, DescribeTaskDefinition, secretsmanager:DescribeSecret). Check the credentials (`aws sts get-caller-identity`, AWS_PROFILE or --profile), the region (--region) and the endpoint (--endpoint-url); -v shows every call made")
    )]
    Aws(ProviderError),

    #[error("no active ECS cluster in region {region} of this account")]
    #[diagnostic(
        code(opsguard::init::no_clusters),
        help("pass --region REGION where the services run, or --cluster NAME; check the account with `aws sts get-caller-identity`")
    )]
    NoClusters { region: String },

    #[error("cannot write {}: {cause}", path.display())]
    #[diagnostic(
        code(opsguard::init::write),
        help("check that the folder exists and is writable, or pass -o PATH")
    )]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

pub async fn execute(default_output: &Path, args: InitArgs) -> Result<u8, InitError> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output.to_owned());
    let to_stdout = output == Path::new("-");
    // Refuse before calling AWS: an answer that cannot be written is wasted.
    if !to_stdout && !args.force && std::fs::symlink_metadata(&output).is_ok() {
        return Err(InitError::Exists { path: output });
    }
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !to_stdout && !dir.is_dir() {
            return Err(InitError::Write {
                path: output.clone(),
                cause: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no folder {}", dir.display()),
                ),
            });
        }
    }

    let aws = AwsConfig {
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        profile: args.profile.clone(),
        ..AwsConfig::default()
    };
    let sdk = crate::providers::aws::sdk_config(&aws)
        .await
        .map_err(InitError::Aws)?;
    let calls = Calls::default();
    let found = discovery::discover(&sdk, &args.clusters, &calls)
        .await
        .map_err(InitError::Aws)?;
    if found.clusters.is_empty() {
        return Err(InitError::NoClusters {
            region: found.region.unwrap_or_else(|| "?".into()),
        });
    }

    let model = Model::build(&found, &args, today());
    let text = render(&model);
    if to_stdout {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    } else {
        super::write_atomically(&output, text.as_bytes()).map_err(|e| match e {
            crate::error::Error::Output { path, source } => InitError::Write {
                path,
                cause: source,
            },
            other => InitError::Write {
                path: output.clone(),
                cause: std::io::Error::other(other.to_string()),
            },
        })?;
    }
    let services: usize = model.clusters.iter().map(|c| c.services.len()).sum();
    eprintln!(
        "init: {} cluster{}, {} service{}, {} credential{} found — {}",
        model.clusters.len(),
        plural(model.clusters.len()),
        services,
        plural(services),
        model.credentials.len(),
        plural(model.credentials.len()),
        if to_stdout {
            "config on stdout".to_owned()
        } else {
            format!("written to {}", output.display())
        },
    );
    eprintln!(
        "next: fill in the lines marked FILL IN, then `opsguard rules list{}` and `opsguard check{}`",
        config_flag(&output, default_output),
        config_flag(&output, default_output)
    );
    Ok(crate::exit::OK)
}

fn config_flag(output: &Path, default_output: &Path) -> String {
    if output == default_output || output == Path::new("-") {
        String::new()
    } else {
        format!(" --config {}", output.display())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn today() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::now_utc()
        .date()
        .format(&fmt)
        .unwrap_or_default()
}

/// A credential found by pairing names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Found {
    Basic {
        username_env: String,
        password_env: String,
    },
    ApiKey {
        api_key_env: String,
    },
}

impl Found {
    fn env_names(&self) -> Vec<&str> {
        match self {
            Found::Basic {
                username_env,
                password_env,
            } => vec![username_env, password_env],
            Found::ApiKey { api_key_env } => vec![api_key_env],
        }
    }
}

/// What the names of one container's variables say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Paired {
    pub found: Vec<Found>,
    /// Secret variables that are part of no credential.
    pub other: Vec<String>,
    /// Per credential, the variables that read one key of a JSON secret.
    pub json_keys: BTreeMap<Found, Vec<(String, String)>>,
}

const USER_SUFFIXES: [&str; 4] = ["username", "user_name", "user", "login"];
const PASSWORD_SUFFIXES: [&str; 4] = ["password", "passwd", "pass", "pwd"];

/// `name` without the first suffix it ends in (case-insensitive), and
/// without the separator before it: `ES_PASSWORD` → `es`.
fn stem(name: &str, suffixes: &[&str]) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let s = suffixes.iter().find(|s| lower.ends_with(*s))?;
    Some(
        lower[..lower.len() - s.len()]
            .trim_end_matches(['_', '-', '.'])
            .to_owned(),
    )
}

fn is_api_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["api_key", "apikey", "api-key"]
        .iter()
        .any(|k| lower.contains(k))
}

/// Pair one container's variables: `secrets` are `(name, valueFrom)`,
/// `plain` the names of its plain `environment` (a username may be one).
pub fn pair(secrets: &[(String, String)], plain: &[String]) -> Paired {
    let mut out = Paired::default();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for (name, _) in secrets.iter().filter(|(n, _)| is_api_key(n)) {
        out.found.push(Found::ApiKey {
            api_key_env: name.clone(),
        });
        used.insert(name);
    }
    let passwords: Vec<(&str, String)> = secrets
        .iter()
        .filter(|(n, _)| !used.contains(n.as_str()))
        .filter_map(|(n, _)| Some((n.as_str(), stem(n, &PASSWORD_SUFFIXES)?)))
        .collect();
    let users: Vec<(&str, String)> = secrets
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(plain.iter().map(String::as_str))
        .filter(|n| !used.contains(n))
        .filter_map(|n| Some((n, stem(n, &USER_SUFFIXES)?)))
        .collect();
    for (p, p_stem) in &passwords {
        let same: Vec<&&str> = users
            .iter()
            .filter(|(_, s)| s == p_stem)
            .map(|(u, _)| u)
            .collect();
        let user = match same.as_slice() {
            [u] => Some(**u),
            [] if passwords.len() == 1 && users.len() == 1 => Some(users[0].0),
            _ => None,
        };
        if let Some(u) = user.filter(|u| !used.contains(u)) {
            out.found.push(Found::Basic {
                username_env: u.to_owned(),
                password_env: (*p).to_owned(),
            });
            used.insert(u);
            used.insert(p);
        }
    }
    for f in &out.found {
        let keys: Vec<(String, String)> = f
            .env_names()
            .iter()
            .filter_map(|n| {
                let (_, vf) = secrets.iter().find(|(s, _)| s == n)?;
                match value_from::parse(vf) {
                    Ok(ValueFrom::Secret(r)) => Some(((*n).to_owned(), r.json_key?)),
                    _ => None,
                }
            })
            .collect();
        if !keys.is_empty() {
            out.json_keys.insert(f.clone(), keys);
        }
    }
    out.other = secrets
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !used.contains(n.as_str()))
        .cloned()
        .collect();
    out.found.sort();
    out
}

/// What the config will say, built from the discovery; [`render`] writes it.
#[derive(Debug, Default)]
pub struct Model {
    pub date: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub clusters: Vec<ClusterLine>,
    pub credentials: Vec<CredentialLine>,
    /// Secret variables in no credential → where they are read.
    pub other_secret_vars: BTreeMap<String, BTreeSet<String>>,
    /// Secret (as named) → (what DescribeSecret said, `ENV of SERVICE` readers).
    pub secrets: BTreeMap<String, (String, BTreeSet<String>)>,
    /// The Elasticsearch URL, guessed from plain environment variables, and
    /// the variables it came from; every distinct guess.
    pub es_urls: BTreeMap<String, BTreeSet<String>>,
    pub task_definitions: usize,
}

#[derive(Debug)]
pub struct ClusterLine {
    pub name: String,
    pub services: Vec<ServiceLine>,
}

#[derive(Debug)]
pub struct ServiceLine {
    pub name: String,
    pub running: i32,
    pub desired: i32,
    pub task_definition: String,
    pub secret_vars: BTreeSet<String>,
}

#[derive(Debug)]
pub struct CredentialLine {
    pub found: Found,
    /// `cluster/service (container)`.
    pub consumers: BTreeSet<String>,
    pub json_keys: BTreeSet<(String, String)>,
    /// Shares a variable with an entry before it: written commented out.
    pub conflicts_with: Option<String>,
}

impl Model {
    pub fn build(d: &Discovery, args: &InitArgs, date: String) -> Model {
        let mut m = Model {
            date,
            region: d.region.clone(),
            endpoint_url: args.endpoint_url.clone(),
            profile: args.profile.clone(),
            task_definitions: d.task_definitions.len(),
            ..Model::default()
        };
        let mut creds: BTreeMap<Found, CredentialLine> = BTreeMap::new();
        for c in &d.clusters {
            let mut services = Vec::new();
            for s in &c.services {
                let td = d.task_definitions.get(&s.task_definition);
                let mut line = ServiceLine {
                    name: s.name.clone(),
                    running: s.running_count,
                    desired: s.desired_count,
                    task_definition: td
                        .map(|t| format!("{}:{}", t.family, t.revision))
                        .unwrap_or_else(|| s.task_definition.clone()),
                    secret_vars: BTreeSet::new(),
                };
                for container in td.iter().flat_map(|t| t.containers.iter()) {
                    let consumer = format!("{}/{} ({})", c.name, s.name, container.name);
                    let plain: Vec<String> = container
                        .environment
                        .iter()
                        .map(|(n, _)| n.clone())
                        .collect();
                    let paired = pair(&container.secrets, &plain);
                    for f in &paired.found {
                        let entry = creds.entry(f.clone()).or_insert_with(|| CredentialLine {
                            found: f.clone(),
                            consumers: BTreeSet::new(),
                            json_keys: BTreeSet::new(),
                            conflicts_with: None,
                        });
                        entry.consumers.insert(consumer.clone());
                        if let Some(keys) = paired.json_keys.get(f) {
                            entry.json_keys.extend(keys.iter().cloned());
                        }
                    }
                    for o in paired.other {
                        m.other_secret_vars
                            .entry(o)
                            .or_default()
                            .insert(format!("{}/{}", c.name, s.name));
                    }
                    for (name, vf) in &container.secrets {
                        line.secret_vars.insert(name.clone());
                        let (secret, status) = describe_ref(d, vf);
                        let e = m.secrets.entry(secret).or_insert((status, BTreeSet::new()));
                        e.1.insert(format!("{name} of {}", s.name));
                    }
                    for (url, from) in es_url_guesses(&container.environment) {
                        m.es_urls.entry(url).or_default().insert(from);
                    }
                }
                services.push(line);
            }
            m.clusters.push(ClusterLine {
                name: c.name.clone(),
                services,
            });
        }
        // Most used first; a config may name an env var in one entry only.
        let mut lines: Vec<CredentialLine> = creds.into_values().collect();
        lines.sort_by(|a, b| {
            b.consumers
                .len()
                .cmp(&a.consumers.len())
                .then_with(|| a.found.cmp(&b.found))
        });
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for line in &mut lines {
            let names = line.found.env_names();
            if let Some(n) = names.iter().find(|n| taken.contains_key(**n)) {
                line.conflicts_with = Some(taken[*n].clone());
            } else {
                for n in names {
                    taken.insert(n.to_owned(), names_of(&line.found));
                }
            }
        }
        m.credentials = lines;
        m
    }
}

fn names_of(f: &Found) -> String {
    f.env_names().join(" + ")
}

/// The secret a `valueFrom` names, as shown, and what DescribeSecret said.
fn describe_ref(d: &Discovery, vf: &str) -> (String, String) {
    match value_from::parse(vf) {
        Ok(ValueFrom::Secret(r)) => match d.secrets.get(&r.secret_id) {
            Some(SecretLookup::Found { name }) => (name.clone(), String::new()),
            Some(SecretLookup::Missing) => (
                r.name_guess(),
                "NOT FOUND in this account and region".into(),
            ),
            Some(SecretLookup::Failed(e)) => {
                (r.name_guess(), format!("could not be described: {e}"))
            }
            None => (r.name_guess(), String::new()),
        },
        Ok(ValueFrom::SsmParameter { name }) => (
            name,
            "an SSM parameter, not a Secrets Manager secret: opsguard does not watch it".into(),
        ),
        Err(e) => (vf.to_owned(), format!("unreadable valueFrom: {e}")),
    }
}

/// Elasticsearch URLs a container's plain environment suggests, each with
/// the variables it came from: a `*es_url`/`*elasticsearch_url` holding a
/// URL, or a `*es_host` with its `*protocol`/`*scheme` and `*port`. Any
/// credentials in a URL are dropped.
fn es_url_guesses(env: &[(String, String)]) -> Vec<(String, String)> {
    let lower: Vec<(String, &str, &str)> = env
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), n.as_str(), v.as_str()))
        .collect();
    let find = |name: &str| lower.iter().find(|(l, _, _)| l == name);
    let mut out = Vec::new();
    for (l, name, value) in &lower {
        let es = ["es", "elasticsearch", "elastic"];
        let stem = |suffixes: &[&str]| {
            suffixes.iter().find_map(|s| {
                l.strip_suffix(s)
                    .map(|p| p.trim_end_matches(['_', '-']).to_owned())
            })
        };
        let is_es = |stem: &str| {
            es.iter()
                .any(|e| stem == *e || stem.ends_with(&format!("_{e}")))
        };
        if stem(&["url", "endpoint"]).is_some_and(|s| is_es(&s)) {
            if let Some(u) = clean_url(value) {
                out.push((u, (*name).to_owned()));
            }
        } else if let Some(s) = stem(&["host"]).filter(|s| is_es(s)) {
            let scheme_var = ["protocol", "scheme"]
                .iter()
                .find_map(|x| find(&format!("{s}_{x}")));
            let port_var = find(&format!("{s}_port"));
            let scheme = scheme_var.map(|(_, _, v)| *v).unwrap_or("https");
            let mut text = format!("{scheme}://{value}");
            if let Some((_, _, port)) = port_var {
                text.push(':');
                text.push_str(port);
            }
            if let Some(u) = clean_url(&text) {
                let mut from = vec![(*name).to_owned()];
                from.extend(scheme_var.map(|(_, n, _)| (*n).to_owned()));
                from.extend(port_var.map(|(_, n, _)| (*n).to_owned()));
                out.push((u, from.join(" + ")));
            }
        }
    }
    out
}

/// An http(s) URL's origin, without credentials; `None` if it is not one.
fn clean_url(text: &str) -> Option<String> {
    let u = url::Url::parse(text).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return None;
    }
    Some(u.origin().ascii_serialization())
}

/// A TOML string (the toml crate picks the quoting and escapes).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Text for a comment: one line, whatever AWS returned.
fn cm(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The config text, one section after another.
pub fn render(m: &Model) -> String {
    let mut o = String::new();
    header(&mut o, m);
    elasticsearch_table(&mut o, m);
    aws_table(&mut o, m);
    ecs_table(&mut o, m);
    secrets_comment(&mut o, m);
    credentials_entries(&mut o, m);
    other_secret_vars(&mut o, m);
    rules_and_the_rest(&mut o);
    o
}

/// The opening comment: when and from what the file was written, and what to do
/// before the first run.
fn header(o: &mut String, m: &Model) {
    let services: usize = m.clusters.iter().map(|c| c.services.len()).sum();
    let _ = writeln!(
        o,
        "# opsguard.toml, written by `opsguard init` on {} from what AWS showed in",
        m.date
    );
    let _ = writeln!(
        o,
        "# region {}: {} cluster{}, {} service{}, {} task definition{}, {} secret{} referenced.",
        cm(m.region.as_deref().unwrap_or("?")),
        m.clusters.len(),
        plural(m.clusters.len()),
        services,
        plural(services),
        m.task_definitions,
        plural(m.task_definitions),
        m.secrets.len(),
        plural(m.secrets.len()),
    );
    o.push_str(
        "#\n\
         # Before the first run:\n\
         #   1. Fill in the lines marked FILL IN; check the guesses marked CHECK.\n\
         #   2. `opsguard rules list` loads this file and points at any mistake.\n\
         #   3. export OPSGUARD_ES_PASSWORD=…, then `opsguard check`: the rules on\n\
         #      the live environment, changing nothing.\n\
         # The format is in README.md, \"Configuration\".\n\n",
    );
}

/// `[elasticsearch]`: the URL (guessed from the task definitions when they
/// agree) and opsguard's own identity, to fill in.
fn elasticsearch_table(o: &mut String, m: &Model) {
    o.push_str("[elasticsearch]\n");
    match m.es_urls.len() {
        1 => {
            let (url, from) = m.es_urls.iter().next().expect("one");
            let _ = writeln!(
                o,
                "# CHECK: guessed from {} in the task definitions' environment.",
                cm(&from.iter().cloned().collect::<Vec<_>>().join(", "))
            );
            let _ = writeln!(o, "url = {}", toml_str(url));
        }
        n => {
            if n > 1 {
                o.push_str("# The task definitions point at several clusters:\n");
                for (url, from) in &m.es_urls {
                    let _ = writeln!(
                        o,
                        "#   {}  (from {})",
                        cm(url),
                        cm(&from.iter().cloned().collect::<Vec<_>>().join(", "))
                    );
                }
            }
            o.push_str(
                "# FILL IN: the URL of the Elasticsearch cluster the services use.\n\
                 url = \"https://FILL-IN.invalid:9243\"\n",
            );
        }
    }
    o.push_str(
        "# FILL IN: the identity opsguard itself uses. Snapshots need the cluster\n\
         # privileges monitor and read_security; remedies need manage_security.\n\
         username = \"elastic\"\n\
         # FILL IN: the variable holding its password when opsguard runs. Or\n\
         # password_secret = \"NAME\" (read from Secrets Manager), or api_key_env\n\
         # = \"VAR\" without username.\n\
         password_env = \"OPSGUARD_ES_PASSWORD\"\n\
         # ca_cert = \"ca.pem\"          # a private CA, relative to this file\n\n",
    );
}

/// `[aws]`: region, endpoint and profile, as given or discovered.
fn aws_table(o: &mut String, m: &Model) {
    o.push_str("[aws]\n");
    match &m.region {
        Some(r) => {
            let _ = writeln!(o, "region = {}", toml_str(r));
        }
        None => o.push_str("# FILL IN: the region of the clusters.\n# region = \"eu-west-1\"\n"),
    }
    match &m.endpoint_url {
        Some(e) => {
            let _ = writeln!(o, "endpoint_url = {}", toml_str(e));
        }
        None => o.push_str("# endpoint_url = \"http://127.0.0.1:4566\"   # an emulator; else the standard AWS chain\n"),
    }
    match &m.profile {
        Some(p) => {
            let _ = writeln!(o, "profile = {}", toml_str(p));
        }
        None => o.push_str("# profile = \"NAME\"\n"),
    }
    o.push_str(
        "# Several accounts or regions: [[aws.targets]] (README.md, \"Many accounts\").\n\n",
    );
}

/// `[ecs]`, after a comment per cluster listing its services.
fn ecs_table(o: &mut String, m: &Model) {
    for c in &m.clusters {
        let _ = writeln!(
            o,
            "# Cluster {}: {} service{}",
            cm(&c.name),
            c.services.len(),
            plural(c.services.len())
        );
        let width = c.services.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let td_width = c
            .services
            .iter()
            .map(|s| s.task_definition.len())
            .max()
            .unwrap_or(0);
        for s in &c.services {
            let mut line = format!(
                "#   {:width$}  {}/{} running  {:td_width$}",
                cm(&s.name),
                s.running,
                s.desired,
                cm(&s.task_definition),
            );
            if !s.secret_vars.is_empty() {
                let vars: Vec<String> = s.secret_vars.iter().map(|v| cm(v)).collect();
                let _ = write!(line, "  secrets: {}", vars.join(", "));
            }
            o.push_str(line.trim_end());
            o.push('\n');
        }
    }
    o.push_str("[ecs]\n");
    let names: Vec<String> = m.clusters.iter().map(|c| toml_str(&c.name)).collect();
    let _ = writeln!(o, "clusters = [{}]\n", names.join(", "));
}

/// The secrets the task definitions reference, as a comment (init never reads one).
fn secrets_comment(o: &mut String, m: &Model) {
    if !m.secrets.is_empty() {
        o.push_str("# Secrets the task definitions reference (never read by init):\n");
        for (name, (status, readers)) in &m.secrets {
            let _ = write!(o, "#   {}", cm(name));
            if !status.is_empty() {
                let _ = write!(o, "  [{}]", cm(status));
            }
            let readers: Vec<String> = readers.iter().map(|r| cm(r)).collect();
            let _ = writeln!(o, "  <- {}", readers.join(", "));
        }
        o.push('\n');
    }
}

/// One `[[credentials]]` entry per credential found, with who reads it; an
/// entry that shares a variable with an earlier one is written commented out.
fn credentials_entries(o: &mut String, m: &Model) {
    if m.credentials.is_empty() {
        o.push_str(
            "# FILL IN: no pair of variables looked like an Elasticsearch credential.\n\
             # Name the task-definition variables that form one, e.g.:\n\
             # [[credentials]]\n\
             # kind = \"elasticsearch-basic\"\n\
             # username_env = \"es_username\"\n\
             # password_env = \"es_password\"\n\n",
        );
    }
    for c in &m.credentials {
        let (kind, why) = match &c.found {
            Found::Basic { .. } => (
                "elasticsearch-basic",
                "a username and a password, paired by name",
            ),
            Found::ApiKey { .. } => ("elasticsearch-api-key", "an API key, by its name"),
        };
        let _ = writeln!(
            o,
            "# {}: {}, read by {} container{}:",
            cm(&names_of(&c.found)),
            why,
            c.consumers.len(),
            plural(c.consumers.len())
        );
        for consumer in &c.consumers {
            let _ = writeln!(o, "#   {}", cm(consumer));
        }
        for (var, key) in &c.json_keys {
            let _ = writeln!(
                o,
                "# {} reads the JSON key `{}` of its secret: opsguard resolves JSON keys",
                cm(var),
                cm(key)
            );
            o.push_str("# itself, so nothing more is needed here.\n");
        }
        let prefix = match &c.conflicts_with {
            Some(other) => {
                let _ = writeln!(
                    o,
                    "# CHECK: shares a variable with `{}` above, and a variable may belong to one\n\
                     # [[credentials]] entry only; left out. Rename the variables in the task\n\
                     # definitions, or pick the entry that is right.",
                    cm(other)
                );
                "# "
            }
            None => "",
        };
        let _ = writeln!(o, "{prefix}[[credentials]]");
        let _ = writeln!(o, "{prefix}kind = {}", toml_str(kind));
        match &c.found {
            Found::Basic {
                username_env,
                password_env,
            } => {
                let _ = writeln!(o, "{prefix}username_env = {}", toml_str(username_env));
                let _ = writeln!(o, "{prefix}password_env = {}", toml_str(password_env));
            }
            Found::ApiKey { api_key_env } => {
                let _ = writeln!(o, "{prefix}api_key_env = {}", toml_str(api_key_env));
            }
        }
        o.push('\n');
    }
}

/// Secret variables in no credential, and how to declare one that holds a JSON object.
fn other_secret_vars(o: &mut String, m: &Model) {
    if !m.other_secret_vars.is_empty() {
        o.push_str("# Other secret variables, in no credential above:\n");
        for (var, services) in &m.other_secret_vars {
            let services: Vec<String> = services.iter().map(|s| cm(s)).collect();
            let _ = writeln!(o, "#   {}  ({})", cm(var), services.join(", "));
        }
        o.push_str(
            "# If one holds a JSON object with an Elasticsearch username and password:\n\
             # [[credentials]]\n\
             # kind = \"elasticsearch-basic\"\n\
             # json_env = \"NAME\"\n\
             # username_key = \"username\"   # the defaults\n\
             # password_key = \"password\"\n\n",
        );
    }
}

/// `[rules]`, starting in mode block, and commented examples of
/// `[environments]` and `[[waivers]]`.
fn rules_and_the_rest(o: &mut String) {
    o.push_str(
        "[rules]\n\
         paths = []                 # extra rule directories, relative to this file\n\
         # What `run` does on a blocking violation: block | rollback | redeploy | warn.\n\
         # block changes nothing; rollback and redeploy need write permissions\n\
         # (README.md, \"IAM permissions\"). Start with block.\n\
         on_violation = \"block\"\n\n\
         # [environments]           # service-name prefixes that name an environment\n\
         # prefixes = [\"prod-\", \"stage-\"]\n\n\
         # [[waivers]]              # turn one finding off, for a while, with a reason\n\
         # rule = \"shared-credential-across-environments\"\n\
         # target = \"search\"\n\
         # reason = \"prod and stage share users until ticket 123\"\n\
         # expires = \"2027-01-31\"   # an expired waiver is an error\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:es-AbCdEf";

    #[test]
    fn username_and_password_pair_by_stem() {
        let p = pair(
            &s(&[
                ("es_username", ARN),
                ("es_password", ARN),
                ("DB_USER", ARN),
                ("DB_PASS", ARN),
                ("sentry_dsn", ARN),
            ]),
            &[],
        );
        assert_eq!(
            p.found,
            [
                Found::Basic {
                    username_env: "DB_USER".into(),
                    password_env: "DB_PASS".into()
                },
                Found::Basic {
                    username_env: "es_username".into(),
                    password_env: "es_password".into()
                },
            ]
        );
        assert_eq!(p.other, ["sentry_dsn"]);
    }

    #[test]
    fn a_lone_pair_needs_no_common_stem_and_a_username_may_be_plain() {
        let p = pair(&s(&[("ELASTIC_PWD", ARN)]), &["SEARCH_LOGIN".into()]);
        assert_eq!(
            p.found,
            [Found::Basic {
                username_env: "SEARCH_LOGIN".into(),
                password_env: "ELASTIC_PWD".into()
            }]
        );
    }

    #[test]
    fn ambiguous_names_are_not_paired() {
        let p = pair(
            &s(&[("a_user", ARN), ("b_user", ARN), ("c_password", ARN)]),
            &[],
        );
        assert!(p.found.is_empty(), "{p:?}");
        assert_eq!(p.other, ["a_user", "b_user", "c_password"]);
    }

    #[test]
    fn api_keys_are_found_by_name() {
        let p = pair(&s(&[("ES_APIKEY", ARN), ("search_api_key", ARN)]), &[]);
        assert_eq!(
            p.found,
            [
                Found::ApiKey {
                    api_key_env: "ES_APIKEY".into()
                },
                Found::ApiKey {
                    api_key_env: "search_api_key".into()
                },
            ]
        );
    }

    #[test]
    fn json_keys_are_noted() {
        let p = pair(
            &s(&[
                ("es_username", &format!("{ARN}:username::")),
                ("es_password", &format!("{ARN}:password::")),
            ]),
            &[],
        );
        let f = Found::Basic {
            username_env: "es_username".into(),
            password_env: "es_password".into(),
        };
        assert_eq!(
            p.json_keys[&f],
            [
                ("es_username".to_string(), "username".to_string()),
                ("es_password".to_string(), "password".to_string())
            ]
        );
    }

    #[test]
    fn es_urls_come_from_plain_environment_without_credentials() {
        let env = s(&[
            ("es_host", "search.internal:9243"),
            ("es_protocol", "https"),
            ("apm_environment", "prod"),
        ]);
        assert_eq!(
            es_url_guesses(&env),
            [(
                "https://search.internal:9243".to_string(),
                "es_host + es_protocol".to_string()
            )]
        );
        let env = s(&[("ELASTICSEARCH_URL", "https://u:pw@es.example:9200/x")]);
        assert_eq!(
            es_url_guesses(&env),
            [(
                "https://es.example:9200".to_string(),
                "ELASTICSEARCH_URL".to_string()
            )]
        );
        assert!(es_url_guesses(&s(&[("queue_url", "https://sqs.example")])).is_empty());
    }

    #[test]
    fn the_rendered_config_loads_and_conflicts_are_left_out() {
        let line = |u: &str, p: &str, n: usize| CredentialLine {
            found: Found::Basic {
                username_env: u.into(),
                password_env: p.into(),
            },
            consumers: (0..n).map(|i| format!("c/s{i} (app)")).collect(),
            json_keys: BTreeSet::new(),
            conflicts_with: None,
        };
        let mut conflicting = line("es_user", "es_password", 1);
        conflicting.conflicts_with = Some("es_username + es_password".into());
        let m = Model {
            date: "2026-11-24".into(),
            region: Some("eu-west-1".into()),
            clusters: vec![ClusterLine {
                name: "a \"quoted\" cluster".into(),
                services: vec![],
            }],
            credentials: vec![line("es_username", "es_password", 2), conflicting],
            ..Model::default()
        };
        let text = render(&m);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opsguard.toml");
        std::fs::write(&path, &text).unwrap();
        let config =
            crate::config::Config::load_offline(&path).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(config.ecs.clusters, ["a \"quoted\" cluster"]);
        assert_eq!(
            config.credentials,
            [crate::config::CredentialSpec::Basic {
                username_env: "es_username".into(),
                password_env: "es_password".into()
            }]
        );
        assert!(text.contains("# username_env = \"es_user\""), "{text}");
        assert!(text.contains("FILL IN"), "{text}");
    }
}
