//! Findings grouped by cause, for the human report: one credential that broke
//! fires several rules (`live-credential-broken`, `secret-rotated-without-redeploy`,
//! …), and a person wants to read about that credential once — its rules,
//! its consumers, what to do — not once per rule.
//!
//! Also what can be done about a cause *from where the report was made*: a
//! `run` has a before state to go back to, `check` has none, and a redeploy
//! is spelled as the exact `aws ecs update-service` command per service.

use super::model::{Remedy, Report, Severity, Violation};

/// The findings about one target.
#[derive(Debug)]
pub(crate) struct Cause<'a> {
    /// `credential`, `service` or `secret` when the messages say so; plan
    /// findings name a resource address and have none.
    pub kind: Option<&'static str>,
    pub target: &'a str,
    /// In report order (blocking first).
    pub findings: Vec<&'a Violation>,
    /// Every consumer any of them names, once, in order of appearance.
    pub consumers: Vec<&'a str>,
    /// Every remedy any of them names, once, `rollback` before `redeploy`.
    pub remedies: Vec<Remedy>,
}

impl Cause<'_> {
    /// `credential search`, or the bare target when its kind is unknown.
    pub fn name(&self) -> String {
        match self.kind {
            Some(k) => format!("{k} {}", self.target),
            None => self.target.to_owned(),
        }
    }

    pub fn blocking(&self) -> bool {
        self.findings.iter().any(|v| v.severity == Severity::Block)
    }
}

const KINDS: [&str; 3] = ["credential", "service", "secret"];

/// What a finding is about, read from its message (`credential search: …`).
pub(crate) fn kind_of(v: &Violation) -> Option<&'static str> {
    KINDS.into_iter().find(|k| {
        v.message
            .strip_prefix(k)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|rest| rest.strip_prefix(v.target.as_str()))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':']))
    })
}

/// Group `violations` by target, in the order targets first appear.
pub(crate) fn group(violations: &[Violation]) -> Vec<Cause<'_>> {
    let mut causes: Vec<Cause<'_>> = Vec::new();
    for v in violations {
        let i = match causes.iter().position(|c| c.target == v.target) {
            Some(i) => i,
            None => {
                causes.push(Cause {
                    kind: None,
                    target: &v.target,
                    findings: Vec::new(),
                    consumers: Vec::new(),
                    remedies: Vec::new(),
                });
                causes.len() - 1
            }
        };
        let c = &mut causes[i];
        c.kind = c.kind.or_else(|| kind_of(v));
        c.findings.push(v);
        for k in &v.consumers {
            if !c.consumers.contains(&k.as_str()) {
                c.consumers.push(k);
            }
        }
        for r in &v.remedies {
            if !c.remedies.contains(r) {
                c.remedies.push(*r);
            }
        }
    }
    for c in &mut causes {
        c.remedies.sort_by_key(|r| match r {
            Remedy::Rollback => 0,
            Remedy::Redeploy => 1,
        });
    }
    causes
}

/// A finding's message without what the cause already says: the leading
/// `credential search: ` and a `(consumers)` list equal to the cause's; a
/// list of all the cause's consumers inside the text reads "its consumers".
pub(crate) fn tidy(v: &Violation, cause: &Cause<'_>) -> String {
    let mut m = v.message.clone();
    if let Some(k) = cause.kind {
        if let Some(rest) = m.strip_prefix(&format!("{k} {}: ", cause.target)) {
            m = rest.to_owned();
        }
    }
    if !cause.consumers.is_empty() {
        let all = cause.consumers.join(", ");
        m = m.replace(&format!(" ({all})"), "");
        if !cause.consumers.contains(&cause.target) {
            m = m.replace(&all, "its consumers");
        }
    }
    m
}

/// The exact command that makes ECS replace a service's tasks (which then
/// read their secrets afresh). `TARGET:cluster/service` names the cluster
/// of an `[[aws.targets]]` account; the command is that account's.
pub(crate) fn redeploy_command(consumer: &str) -> String {
    let bare = consumer.split_once(':').map_or(consumer, |(_, r)| r);
    let (cluster, service) = bare.split_once('/').unwrap_or(("default", bare));
    let argv: Vec<String> = [
        "aws",
        "ecs",
        "update-service",
        "--cluster",
        cluster,
        "--service",
        service,
        "--force-new-deployment",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    super::command_line(&argv)
}

/// One way to put a cause right: a sentence, and the commands that do it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Suggestion {
    pub text: String,
    pub commands: Vec<String>,
}

/// What can be done about `cause` from where `report` was made. Empty when
/// nothing is to be done by hand: a remedy was applied (the remediation
/// says how it went), or nothing ran for real (`rehearse`, `plan`).
pub(crate) fn suggestions(report: &Report, cause: &Cause<'_>) -> Vec<Suggestion> {
    if report.remediation.is_some() || matches!(report.subcommand.as_str(), "rehearse" | "plan") {
        return Vec::new();
    }
    let check = report.subcommand == "check";
    if check {
        return from_check(cause);
    }
    let mut out = Vec::new();
    for r in &cause.remedies {
        match *r {
            Remedy::Rollback if report.subcommand == "diff" => out.push(Suggestion {
                text: "roll back to what the BEFORE snapshot shows".into(),
                commands: Vec::new(),
            }),
            Remedy::Rollback => out.push(Suggestion {
                text: format!(
                    "roll back what the command changed (the before state is in .opsguard/runs/{}/before.json)",
                    report.run_id
                ),
                commands: Vec::new(),
            }),
            Remedy::Redeploy if cause.consumers.is_empty() => out.push(Suggestion {
                text: "force a new deployment of the services that use it".into(),
                commands: Vec::new(),
            }),
            Remedy::Redeploy => out.push(Suggestion {
                text: if cause.consumers.len() == 1 {
                    "force a new deployment of its consumer:".into()
                } else {
                    "force a new deployment of its consumers:".into()
                },
                commands: cause
                    .consumers
                    .iter()
                    .map(|c| redeploy_command(c))
                    .collect(),
            }),
        }
    }
    out
}

/// `check` saw one moment: there is no before state to go back to, so a
/// rollback is no suggestion. What is left is a redeploy where it helps —
/// never where the value new tasks would read is refused — and, for the
/// rest, what to put right by hand.
fn from_check(cause: &Cause<'_>) -> Vec<Suggestion> {
    let fired = |rule: &str| {
        cause
            .findings
            .iter()
            .any(|v| v.rule == rule && v.severity == Severity::Block)
    };
    let redeploy = |text: &str, services: &[&str]| Suggestion {
        text: text.to_owned(),
        commands: services.iter().map(|s| redeploy_command(s)).collect(),
    };
    if fired("secret-out-of-sync") {
        return vec![Suggestion {
            text: "make the secret and Elasticsearch agree again: set the user's password to the value in its secret, or put the value that authenticates back into the secret; do not redeploy before that, new tasks would read the refused value".into(),
            commands: Vec::new(),
        }];
    }
    if fired("service-degraded") && cause.kind == Some("service") {
        return vec![redeploy(
            "find why in the service's events; once the cause is fixed, force a new deployment:",
            &[cause.target],
        )];
    }
    if cause.remedies.contains(&Remedy::Redeploy) && !cause.consumers.is_empty() {
        return vec![redeploy(
            "force a new deployment of its consumers:",
            &cause.consumers,
        )];
    }
    if cause.blocking() && !cause.remedies.is_empty() {
        return vec![Suggestion {
            text: "put it right by hand: check saw one moment, so it has no before state to go back to".into(),
            commands: Vec::new(),
        }];
    }
    Vec::new()
}

/// Whether any of `causes` is met with a redeploy command: what
/// `opsguard check --fix redeploy` would do for all of them at once.
pub(crate) fn any_redeploy(report: &Report, causes: &[Cause<'_>]) -> bool {
    causes.iter().filter(|c| c.blocking()).any(|c| {
        suggestions(report, c)
            .iter()
            .any(|s| !s.commands.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sev(s: &str) -> Severity {
        serde_json::from_value(serde_json::json!(s)).unwrap()
    }

    fn v(rule: &str, severity: &str, target: &str, message: &str, remedies: &[&str]) -> Violation {
        Violation {
            rule: rule.into(),
            severity: sev(severity),
            target: target.into(),
            message: message.into(),
            consumers: vec!["c/prod-search-api".into(), "c/stage-search-api".into()],
            remedies: remedies
                .iter()
                .map(|r| serde_json::from_value(serde_json::json!(r)).unwrap())
                .collect(),
            ..Violation::default()
        }
    }

    fn incident() -> Vec<Violation> {
        vec![
            v(
                "live-credential-broken",
                "block",
                "search",
                "credential search: the value is rejected now (c/prod-search-api, c/stage-search-api)",
                &["rollback", "redeploy"],
            ),
            v(
                "secret-rotated-without-redeploy",
                "block",
                "search",
                "credential search: 4 task(s) of c/prod-search-api, c/stage-search-api hold the old value",
                &["redeploy", "rollback"],
            ),
            v(
                "shared-credential-across-environments",
                "warn",
                "searcher",
                "credential searcher is shared (c/prod-search-api, c/stage-search-api): a change breaks both",
                &[],
            ),
        ]
    }

    #[test]
    fn one_cause_per_target_with_its_rules_consumers_and_remedies_once() {
        let vs = incident();
        let causes = group(&vs);
        assert_eq!(causes.len(), 2);
        let c = &causes[0];
        assert_eq!(c.name(), "credential search");
        assert_eq!(c.findings.len(), 2);
        assert_eq!(c.consumers, ["c/prod-search-api", "c/stage-search-api"]);
        assert_eq!(c.remedies, [Remedy::Rollback, Remedy::Redeploy]);
        assert!(c.blocking());
        assert_eq!(causes[1].name(), "credential searcher");
        assert!(!causes[1].blocking());
    }

    #[test]
    fn messages_lose_what_the_cause_already_says() {
        let vs = incident();
        let causes = group(&vs);
        assert_eq!(tidy(&vs[0], &causes[0]), "the value is rejected now");
        assert_eq!(
            tidy(&vs[1], &causes[0]),
            "4 task(s) of its consumers hold the old value"
        );
        assert_eq!(
            tidy(&vs[2], &causes[1]),
            "credential searcher is shared: a change breaks both"
        );
        // A message about something else is left alone.
        let plan = v("plan-x", "block", "aws_x.y", "aws_x.y (update): z", &[]);
        let plan = [plan];
        let causes = group(&plan);
        assert_eq!(causes[0].kind, None);
        assert_eq!(tidy(&plan[0], &causes[0]), "aws_x.y (update): z");
    }

    #[test]
    fn redeploys_are_spelled_as_the_aws_command() {
        assert_eq!(
            redeploy_command("catalogue-api-2021-04-26/prod-search-api"),
            "aws ecs update-service --cluster catalogue-api-2021-04-26 --service prod-search-api --force-new-deployment"
        );
        assert_eq!(
            redeploy_command("staging:cat/api"),
            "aws ecs update-service --cluster cat --service api --force-new-deployment"
        );
    }

    #[test]
    fn check_suggests_no_rollback_and_run_names_its_own_before_state() {
        let vs = incident();
        let causes = group(&vs);
        let mut r = Report {
            subcommand: "check".into(),
            run_id: "20261202T000000Z-abcd".into(),
            ..Report::default()
        };
        let s = suggestions(&r, &causes[0]);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].commands.len(), 2);
        assert!(!s[0].text.contains("roll back"), "{s:?}");
        assert!(any_redeploy(&r, &causes));
        r.subcommand = "run".into();
        let s = suggestions(&r, &causes[0]);
        assert_eq!(s.len(), 2);
        assert!(
            s[0].text
                .contains(".opsguard/runs/20261202T000000Z-abcd/before.json"),
            "{s:?}"
        );
        // Only a rollback, in check: by hand, and why.
        let only = [v(
            "secret-out-of-sync",
            "block",
            "search",
            "credential search: x",
            &["rollback"],
        )];
        let causes = group(&only);
        r.subcommand = "check".into();
        let s = suggestions(&r, &causes[0]);
        assert!(
            s[0].text
                .starts_with("make the secret and Elasticsearch agree"),
            "{s:?}"
        );
        assert!(
            s[0].commands.is_empty(),
            "a redeploy would start failing tasks"
        );
        assert!(!any_redeploy(&r, &causes));
        // A degraded service: a redeploy, once its cause is fixed.
        let degraded = [v(
            "service-degraded",
            "block",
            "c/prod-search-api",
            "service c/prod-search-api is degraded: 1 of 2 desired tasks running",
            &["rollback"],
        )];
        let causes = group(&degraded);
        let s = suggestions(&r, &causes[0]);
        assert_eq!(
            s[0].commands,
            ["aws ecs update-service --cluster c --service prod-search-api --force-new-deployment"]
        );
        assert!(any_redeploy(&r, &causes));
        // Any other rule with only a rollback: by hand.
        let other = [v(
            "custom",
            "block",
            "search",
            "credential search: x",
            &["rollback"],
        )];
        let causes = group(&other);
        let s = suggestions(&r, &causes[0]);
        assert!(s[0].text.starts_with("put it right by hand"), "{s:?}");
    }
}
