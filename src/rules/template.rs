//! Message templates: `"credential {id} broke ({consumers})"`.
//!
//! `{name}` is any fact of the item, `{target}` is the item's id, `{{` and
//! `}}` are literal braces. Lists are joined with ", " and an empty list reads
//! "none", so a message never shows a bare `()`. Placeholders are checked
//! against the facts when the rule loads: a typo is a load error, not a
//! message with a hole in it at the worst possible moment.

use super::schema::Schema;

#[derive(Clone, Debug)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Fact(String),
    Target,
}

/// A template error at a byte offset of the template text.
#[derive(Debug)]
pub(crate) struct TemplateError {
    pub offset: usize,
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Template {
    pub(crate) fn parse(text: &str, schema: &Schema) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((i, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|(_, c)| *c) == Some('{') => {
                    rest.next();
                    lit.push('{');
                }
                '}' if rest.peek().map(|(_, c)| *c) == Some('}') => {
                    rest.next();
                    lit.push('}');
                }
                '{' => {
                    let Some(close) = text[i..].find('}') else {
                        return Err(TemplateError {
                            offset: i,
                            len: 1,
                            message: "`{` is not closed".into(),
                            help: Some("write `{{` for a literal brace".into()),
                        });
                    };
                    let name = &text[i + 1..i + close];
                    if name == "target" {
                        if !lit.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut lit)));
                        }
                        parts.push(Part::Target);
                    } else if schema.field(name).is_some() {
                        if !lit.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut lit)));
                        }
                        parts.push(Part::Fact(name.to_owned()));
                    } else {
                        let known = format!(
                            "placeholders are {{target}} and the facts: {}",
                            schema.field_list()
                        );
                        let help = match schema.suggest(name) {
                            Some(n) => format!("did you mean `{{{n}}}`? P{}", &known[1..]),
                            None => known,
                        };
                        return Err(TemplateError {
                            offset: i,
                            len: close + 1,
                            message: format!(
                                "unknown placeholder `{{{name}}}` in `message`: {} has no fact `{name}`",
                                schema.var
                            ),
                            help: Some(help),
                        });
                    }
                    while rest.peek().is_some_and(|(j, _)| *j <= i + close) {
                        rest.next();
                    }
                }
                '}' => {
                    return Err(TemplateError {
                        offset: i,
                        len: 1,
                        message: "`}` without a matching `{`".into(),
                        help: Some("write `}}` for a literal brace".into()),
                    })
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template { parts })
    }

    /// Fill in the template from the item's serde form.
    pub(crate) fn render(&self, item: &serde_json::Value, target: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Target => out.push_str(target),
                Part::Fact(name) => match item.get(name) {
                    Some(v) => render_value(v, &mut out),
                    None => out.push('?'),
                },
            }
        }
        out
    }
}

fn render_value(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(items) if items.is_empty() => out.push_str("none"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_value(item, out);
            }
        }
        Value::Null => out.push_str("none"),
        other => out.push_str(&other.to_string()),
    }
}
