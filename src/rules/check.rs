//! Load-time checks of a compiled `when`: every name it uses exists, and the
//! facts are used as what they are.
//!
//! CEL evaluates lazily and its equality is heterogeneous: `credential.typo`
//! behind a false `&&`, or `credential.running_tasks_after == "3"`, or
//! `credential.current_value_after == "rejectd"`, never raise an error — the
//! rule just never fires, which for a safety check is the worst way to fail.
//! So the AST is walked once when the rule loads: unknown names and facts
//! are errors, and a small type inference (facts have known types, literals
//! too; anything computed beyond that is "dynamic" and trusted) catches
//! comparisons that can never hold and conditions that are not bools.

use super::error::InvalidKind;
use super::schema::{FieldType, Schema};
use crate::facts::model::PROBE_STATES;
use cel::common::ast::SourceInfo;
use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

/// Facts whose values are the probe states of [`PROBE_STATES`].
const PROBE_FIELDS: [&str; 3] = [
    "authenticated_before",
    "before_value_after",
    "current_value_after",
];

/// A problem in `when`, at a byte offset of the `when` text.
#[derive(Debug)]
pub(crate) struct CheckError {
    pub kind: InvalidKind,
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    List(Box<Ty>),
    Map,
    /// The item itself (`credential`, …).
    Fact,
    /// Not known statically: trusted.
    Dyn,
}

impl Ty {
    fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null".into(),
            Ty::List(t) if **t == Ty::Dyn => "list".into(),
            Ty::List(t) => format!("list of {}s", t.name()),
            Ty::Map => "map".into(),
            Ty::Fact => "fact record".into(),
            Ty::Dyn => "dynamic value".into(),
        }
    }

    /// The name with its article: "an int", "a list of strings".
    fn a(&self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    fn from_field(t: FieldType) -> Ty {
        match t {
            FieldType::Bool => Ty::Bool,
            FieldType::Int => Ty::Int,
            FieldType::Double => Ty::Double,
            FieldType::String => Ty::String,
            FieldType::StringList => Ty::List(Box::new(Ty::String)),
            FieldType::List => Ty::List(Box::new(Ty::Dyn)),
            FieldType::Other => Ty::Dyn,
        }
    }
}

/// Can values of these types ever be equal?
fn comparable(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) => true,
        (a, b) if a.numeric() && b.numeric() => true,
        (Ty::List(a), Ty::List(b)) => comparable(a, b),
        (a, b) => a == b,
    }
}

/// Can values of these types be ordered with `<`?
fn orderable(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) => true,
        (a, b) if a.numeric() && b.numeric() => true,
        (Ty::String, Ty::String) | (Ty::Bytes, Ty::Bytes) | (Ty::Bool, Ty::Bool) => true,
        _ => false,
    }
}

pub(crate) fn check(
    expr: &IdedExpr,
    info: &SourceInfo,
    when: &str,
    schema: &'static Schema,
) -> Result<(), CheckError> {
    let mut c = Checker {
        info,
        when,
        schema,
        scopes: Vec::new(),
    };
    let t = c.walk(expr)?;
    if !matches!(t, Ty::Bool | Ty::Dyn) {
        return Err(c.error(
            expr,
            InvalidKind::Type,
            format!("`when` must be a condition (a bool), but this is {}", t.a()),
            Some(format!(
                "compare it, e.g. `{}.running_tasks_after > 0`, or test a bool fact",
                schema.var
            )),
        ));
    }
    Ok(())
}

struct Checker<'a> {
    info: &'a SourceInfo,
    when: &'a str,
    schema: &'static Schema,
    /// Variables bound by comprehensions (`exists(c, …)`), innermost last.
    scopes: Vec<(String, Ty)>,
}

impl Checker<'_> {
    /// Byte range of an expression in `when`: from the leftmost to the
    /// rightmost position of it and everything under it (the parser records
    /// a binary operator's position at the operator).
    fn extent(&self, e: &IdedExpr) -> (usize, usize) {
        let mut range: Option<(usize, usize)> = None;
        self.visit_offsets(e, &mut range);
        match range {
            Some((start, end)) => {
                let start = start.min(self.when.len());
                let end = end.clamp(start, self.when.len());
                (start, end - start)
            }
            None => (0, 0),
        }
    }

    fn visit_offsets(&self, e: &IdedExpr, range: &mut Option<(usize, usize)>) {
        if let Some((start, stop)) = self.info.offset_for(e.id) {
            let (start, end) = (start as usize, stop as usize + 1);
            *range = Some(match *range {
                None => (start, end),
                Some((s, t)) => (s.min(start), t.max(end)),
            });
        }
        match &e.expr {
            Expr::Select(s) => self.visit_offsets(&s.operand, range),
            Expr::Call(c) => {
                if let Some(t) = &c.target {
                    self.visit_offsets(t, range);
                }
                for a in &c.args {
                    self.visit_offsets(a, range);
                }
            }
            Expr::List(l) => {
                for el in &l.elements {
                    self.visit_offsets(el, range);
                }
            }
            Expr::Comprehension(c) => {
                self.visit_offsets(&c.iter_range, range);
                self.visit_offsets(&c.loop_step, range);
            }
            _ => {}
        }
    }

    fn error(
        &self,
        e: &IdedExpr,
        kind: InvalidKind,
        message: String,
        help: Option<String>,
    ) -> CheckError {
        let (offset, len) = self.extent(e);
        CheckError {
            kind,
            offset,
            len,
            message,
            help,
        }
    }

    /// The source text of an expression, for messages.
    fn text(&self, e: &IdedExpr) -> String {
        match &e.expr {
            Expr::Ident(n) => n.clone(),
            Expr::Select(s) if !s.test => format!("{}.{}", self.text(&s.operand), s.field),
            Expr::Literal(LiteralValue::String(s)) => format!("{:?}", s.inner()),
            _ => "this expression".into(),
        }
    }

    fn known_facts_help(&self) -> String {
        format!(
            "a `{}` rule sees one {} as `{}`, with the facts: {}",
            self.schema.each,
            self.schema.var,
            self.schema.var,
            self.schema.field_list()
        )
    }

    fn walk(&mut self, e: &IdedExpr) -> Result<Ty, CheckError> {
        match &e.expr {
            Expr::Unspecified => Ok(Ty::Dyn),
            Expr::Literal(l) => Ok(match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            }),
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
                    return Ok(t.clone());
                }
                if name == self.schema.var {
                    return Ok(Ty::Fact);
                }
                let other = [
                    super::Each::Credentials,
                    super::Each::Services,
                    super::Each::Secrets,
                    super::Each::Changes,
                ]
                .into_iter()
                .find(|each| each.var() == name);
                let message = match other {
                    Some(each) => format!(
                        "`{name}` is not available here: this rule has each = \"{}\", so it sees `{}`, not the {each} kind",
                        self.schema.each, self.schema.var
                    ),
                    None => format!(
                        "unknown name `{name}`: a `{}` rule sees its item as `{}`",
                        self.schema.each, self.schema.var
                    ),
                };
                Err(self.error(
                    e,
                    InvalidKind::UnknownFact,
                    message,
                    Some(self.known_facts_help()),
                ))
            }
            Expr::Select(s) => {
                let operand = self.walk(&s.operand)?;
                let result = match operand {
                    Ty::Fact => match self.schema.field(&s.field) {
                        Some(t) => Ty::from_field(t),
                        None => {
                            let mut err = self.error(
                                e,
                                InvalidKind::UnknownFact,
                                format!("`{}` has no fact `{}`", self.schema.var, s.field),
                                Some(match self.schema.suggest(&s.field) {
                                    Some(near) => format!(
                                        "did you mean `{}.{near}`? {}",
                                        self.schema.var,
                                        capitalised(&self.known_facts_help())
                                    ),
                                    None => self.known_facts_help(),
                                }),
                            );
                            // Point at the field name, not at the dot.
                            if let Some(i) = self.when[err.offset..].find(s.field.as_str()) {
                                err.offset += i;
                                err.len = s.field.len();
                            }
                            return Err(err);
                        }
                    },
                    Ty::Map | Ty::Dyn => Ty::Dyn,
                    other => {
                        return Err(self.error(
                            e,
                            InvalidKind::Type,
                            format!(
                                "`{}` is {}; it has no field `{}`",
                                self.text(&s.operand),
                                other.a(),
                                s.field
                            ),
                            None,
                        ))
                    }
                };
                Ok(if s.test { Ty::Bool } else { result })
            }
            Expr::Call(call) => self.call(e, call),
            Expr::Comprehension(c) => {
                let range = self.walk(&c.iter_range)?;
                let elem = match range {
                    Ty::List(t) => *t,
                    Ty::Map | Ty::Dyn => Ty::Dyn,
                    other => {
                        return Err(self.error(
                            &c.iter_range,
                            InvalidKind::Type,
                            format!(
                                "cannot iterate over `{}`, {}",
                                self.text(&c.iter_range),
                                other.a()
                            ),
                            None,
                        ))
                    }
                };
                let accu = self.walk(&c.accu_init)?;
                let depth = self.scopes.len();
                self.scopes.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.scopes.push((v2.clone(), Ty::Dyn));
                }
                self.scopes.push((c.accu_var.clone(), accu));
                let walked = (|| {
                    self.walk(&c.loop_cond)?;
                    self.walk(&c.loop_step)?;
                    self.walk(&c.result)
                })();
                self.scopes.truncate(depth);
                walked
            }
            Expr::List(list) => {
                let mut elem: Option<Ty> = None;
                for el in &list.elements {
                    let t = self.walk(el)?;
                    elem = Some(match elem {
                        None => t,
                        Some(prev) if prev == t => prev,
                        Some(_) => Ty::Dyn,
                    });
                }
                Ok(Ty::List(Box::new(elem.unwrap_or(Ty::Dyn))))
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(m) = &entry.expr {
                        self.walk(&m.key)?;
                        self.walk(&m.value)?;
                    }
                }
                Ok(Ty::Map)
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => {
                            self.walk(&f.value)?;
                        }
                        EntryExpr::MapEntry(m) => {
                            self.walk(&m.key)?;
                            self.walk(&m.value)?;
                        }
                    }
                }
                Ok(Ty::Dyn)
            }
        }
    }

    fn call(&mut self, e: &IdedExpr, call: &cel::common::ast::CallExpr) -> Result<Ty, CheckError> {
        let target = match &call.target {
            Some(t) => Some(self.walk(t)?),
            None => None,
        };
        let mut args = Vec::with_capacity(call.args.len());
        for a in &call.args {
            args.push(self.walk(a)?);
        }
        let f = call.func_name.as_str();
        let type_error = |this: &Self, at: &IdedExpr, message: String| {
            Err(this.error(at, InvalidKind::Type, message, None))
        };
        match (f, target.as_ref(), args.as_slice()) {
            ("_&&_" | "_||_", None, [a, b]) => {
                for (t, arg) in [(a, &call.args[0]), (b, &call.args[1])] {
                    if !matches!(t, Ty::Bool | Ty::Dyn) {
                        let op = if f == "_&&_" { "&&" } else { "||" };
                        return type_error(
                            self,
                            arg,
                            format!(
                                "`{op}` needs a bool on each side, but `{}` is {}",
                                self.text(arg),
                                t.a()
                            ),
                        );
                    }
                }
                Ok(Ty::Bool)
            }
            ("!_", None, [a]) => {
                if !matches!(a, Ty::Bool | Ty::Dyn) {
                    return type_error(
                        self,
                        &call.args[0],
                        format!(
                            "`!` needs a bool, but `{}` is {}",
                            self.text(&call.args[0]),
                            a.a()
                        ),
                    );
                }
                Ok(Ty::Bool)
            }
            ("_==_" | "_!=_", None, [a, b]) => {
                if !comparable(a, b) {
                    let always = if f == "_==_" { "false" } else { "true" };
                    return type_error(
                        self,
                        e,
                        format!(
                            "`{}` is {} and `{}` is {}: this comparison is always {always}",
                            self.text(&call.args[0]),
                            a.a(),
                            self.text(&call.args[1]),
                            b.a()
                        ),
                    );
                }
                self.probe_literals(&call.args[0], &call.args[1])?;
                self.probe_literals(&call.args[1], &call.args[0])?;
                Ok(Ty::Bool)
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                if !orderable(a, b) {
                    return type_error(
                        self,
                        e,
                        format!(
                            "cannot order `{}` ({}) and `{}` ({})",
                            self.text(&call.args[0]),
                            a.a(),
                            self.text(&call.args[1]),
                            b.a()
                        ),
                    );
                }
                Ok(Ty::Bool)
            }
            ("@in", None, [elem, container]) => {
                match container {
                    Ty::List(t) => {
                        if !comparable(elem, t) {
                            return type_error(
                                self,
                                e,
                                format!(
                                    "`{}` is {} and `{}` is {}: `in` is always false",
                                    self.text(&call.args[0]),
                                    elem.a(),
                                    self.text(&call.args[1]),
                                    container.a()
                                ),
                            );
                        }
                    }
                    Ty::Map | Ty::Dyn => {}
                    other => {
                        return type_error(
                            self,
                            &call.args[1],
                            format!(
                                "`in` needs a list or a map on its right, but `{}` is {}",
                                self.text(&call.args[1]),
                                other.a()
                            ),
                        )
                    }
                }
                // `credential.current_value_after in ["rejected", "unresolved"]`
                if let Expr::List(list) = &call.args[1].expr {
                    for el in &list.elements {
                        self.probe_literals(&call.args[0], el)?;
                    }
                }
                Ok(Ty::Bool)
            }
            ("size", None, [a]) | ("size", Some(a), []) => {
                let at = match call.target.as_deref() {
                    Some(t) => t,
                    None => &call.args[0],
                };
                match a {
                    Ty::List(_) | Ty::String | Ty::Bytes | Ty::Map | Ty::Dyn => Ok(Ty::Int),
                    other => type_error(
                        self,
                        at,
                        format!(
                            "`size` needs a list, string or map, but `{}` is {}",
                            self.text(at),
                            other.a()
                        ),
                    ),
                }
            }
            ("startsWith" | "endsWith" | "contains" | "matches", Some(t), [a]) => {
                let at = call.target.as_deref().expect("a target");
                if !matches!(t, Ty::String | Ty::Dyn) {
                    return type_error(
                        self,
                        at,
                        format!(
                            "`{f}` is a string method, but `{}` is {}",
                            self.text(at),
                            t.a()
                        ),
                    );
                }
                if !matches!(a, Ty::String | Ty::Dyn) {
                    return type_error(
                        self,
                        &call.args[0],
                        format!(
                            "`{f}` takes a string, but `{}` is {}",
                            self.text(&call.args[0]),
                            a.a()
                        ),
                    );
                }
                Ok(Ty::Bool)
            }
            ("_?_:_", None, [c, a, b]) => {
                if !matches!(c, Ty::Bool | Ty::Dyn) {
                    return type_error(
                        self,
                        &call.args[0],
                        format!(
                            "`? :` needs a bool condition, but `{}` is {}",
                            self.text(&call.args[0]),
                            c.a()
                        ),
                    );
                }
                Ok(if a == b { a.clone() } else { Ty::Dyn })
            }
            ("_[_]", None, [container, _]) => Ok(match container {
                Ty::List(t) => (**t).clone(),
                _ => Ty::Dyn,
            }),
            ("_+_", None, [a, b]) => Ok(match (a, b) {
                (a, b) if a == b => a.clone(),
                (Ty::List(_), Ty::List(_)) => Ty::List(Box::new(Ty::Dyn)),
                _ => Ty::Dyn,
            }),
            ("_-_" | "_*_" | "_/_" | "_%_", None, [a, b]) if a == b && a.numeric() => Ok(a.clone()),
            ("-_", None, [a]) if a.numeric() => Ok(a.clone()),
            ("@not_strictly_false", None, [_]) => Ok(Ty::Bool),
            ("int", None, [_]) => Ok(Ty::Int),
            ("uint", None, [_]) => Ok(Ty::Uint),
            ("double", None, [_]) => Ok(Ty::Double),
            ("string", None, [_]) => Ok(Ty::String),
            ("bool", None, [_]) => Ok(Ty::Bool),
            _ => Ok(Ty::Dyn),
        }
    }

    /// `fact == "literal"` where the fact is a probe state: the literal must
    /// be one of the states, or the comparison can never hold.
    fn probe_literals(&self, fact: &IdedExpr, literal: &IdedExpr) -> Result<(), CheckError> {
        let Expr::Select(s) = &fact.expr else {
            return Ok(());
        };
        if s.test || !PROBE_FIELDS.contains(&s.field.as_str()) {
            return Ok(());
        }
        if !matches!(&s.operand.expr, Expr::Ident(n) if n == self.schema.var) {
            return Ok(());
        }
        let Expr::Literal(LiteralValue::String(v)) = &literal.expr else {
            return Ok(());
        };
        let v: &str = v.inner();
        if PROBE_STATES.contains(&v) {
            return Ok(());
        }
        Err(self.error(
            literal,
            InvalidKind::Type,
            format!(
                "`{}.{}` is never {v:?}: it is one of {}",
                self.schema.var,
                s.field,
                PROBE_STATES.map(|s| format!("{s:?}")).join(", ")
            ),
            None,
        ))
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
