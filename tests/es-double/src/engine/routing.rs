//! The REST router: which handler a method and path reach, in
//! Elasticsearch's order (explicit path segments win over wildcards), and
//! the 400 "no handler found" / 405 "Incorrect HTTP method" answers.

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum RouteId {
    Root,
    Health,
    HealthIndex,
    Authenticate,
    Users,
    User,
    HasPrivileges,
    OwnPassword,
    UserPassword,
    Enable,
    Disable,
    Roles,
    Role,
    ApiKey,
    Index,
}

pub(super) enum Seg {
    Lit(&'static str),
    Var(&'static str),
}

pub(super) struct RouteDef {
    pub(super) segs: &'static [Seg],
    pub(super) methods: &'static [&'static str],
    pub(super) id: RouteId,
}

use Seg::{Lit, Var};

pub(super) const ROUTES: &[RouteDef] = &[
    RouteDef {
        segs: &[],
        methods: &["GET", "HEAD"],
        id: RouteId::Root,
    },
    RouteDef {
        segs: &[Lit("_cluster"), Lit("health")],
        methods: &["GET"],
        id: RouteId::Health,
    },
    RouteDef {
        segs: &[Lit("_cluster"), Lit("health"), Var("index")],
        methods: &["GET"],
        id: RouteId::HealthIndex,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("_authenticate")],
        methods: &["GET"],
        id: RouteId::Authenticate,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user")],
        methods: &["GET"],
        id: RouteId::Users,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user"), Var("username")],
        methods: &["GET", "PUT", "POST", "DELETE"],
        id: RouteId::User,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user"), Lit("_has_privileges")],
        methods: &["GET", "POST"],
        id: RouteId::HasPrivileges,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("user"),
            Lit("_has_privileges"),
        ],
        methods: &["GET", "POST"],
        id: RouteId::HasPrivileges,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user"), Lit("_password")],
        methods: &["PUT", "POST"],
        id: RouteId::OwnPassword,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("username"),
            Lit("_password"),
        ],
        methods: &["PUT", "POST"],
        id: RouteId::UserPassword,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("username"),
            Lit("_enable"),
        ],
        methods: &["PUT", "POST"],
        id: RouteId::Enable,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("username"),
            Lit("_disable"),
        ],
        methods: &["PUT", "POST"],
        id: RouteId::Disable,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("role")],
        methods: &["GET"],
        id: RouteId::Roles,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("role"), Var("name")],
        methods: &["GET", "PUT", "POST", "DELETE"],
        id: RouteId::Role,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("api_key")],
        methods: &["GET", "POST", "PUT", "DELETE"],
        id: RouteId::ApiKey,
    },
    RouteDef {
        segs: &[Var("index")],
        methods: &["GET", "HEAD", "PUT", "DELETE"],
        id: RouteId::Index,
    },
];

pub(super) struct Matched {
    pub(super) id: RouteId,
    pub(super) vars: Vec<(&'static str, String)>,
}

pub(super) enum RouteResult {
    Found(Matched),
    /// The path exists, but not for this method: the methods it allows.
    WrongMethod(Vec<&'static str>),
    NoHandler,
}

pub(super) fn route(method: &str, segments: &[String]) -> RouteResult {
    // Candidates in Elasticsearch's trie order: explicit segments win over
    // wildcards, earlier positions first.
    let mut candidates: Vec<(&RouteDef, Vec<bool>)> = ROUTES
        .iter()
        .filter(|r| r.segs.len() == segments.len())
        .filter(|r| {
            r.segs.iter().zip(segments).all(|(s, p)| match s {
                Lit(l) => l == p,
                Var(_) => true,
            })
        })
        .map(|r| (r, r.segs.iter().map(|s| matches!(s, Lit(_))).collect()))
        .collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1));
    for (r, _) in &candidates {
        if r.methods.contains(&method) {
            let vars = r
                .segs
                .iter()
                .zip(segments)
                .filter_map(|(s, p)| match s {
                    Var(name) => Some((*name, p.clone())),
                    Lit(_) => None,
                })
                .collect();
            return RouteResult::Found(Matched { id: r.id, vars });
        }
    }
    if candidates.is_empty() {
        return RouteResult::NoHandler;
    }
    let mut allowed: Vec<&'static str> = Vec::new();
    for (r, _) in &candidates {
        for m in r.methods {
            if !allowed.contains(m) {
                allowed.push(m);
            }
        }
    }
    RouteResult::WrongMethod(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn explicit_segments_win_over_wildcards() {
        match route("PUT", &segs("/_security/user/_password")) {
            RouteResult::Found(m) => assert_eq!(m.id, RouteId::OwnPassword),
            _ => panic!("expected a route"),
        }
        match route("GET", &segs("/_security/user/_password")) {
            RouteResult::Found(m) => {
                assert_eq!(m.id, RouteId::User);
                assert_eq!(m.vars, vec![("username", "_password".to_string())]);
            }
            _ => panic!("expected a route"),
        }
    }

    #[test]
    fn wrong_method_lists_allowed_methods() {
        match route("PATCH", &segs("/_security/user/joe")) {
            RouteResult::WrongMethod(m) => assert_eq!(m, vec!["GET", "PUT", "POST", "DELETE"]),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            route("GET", &segs("/a/b/c")),
            RouteResult::NoHandler
        ));
    }
}
