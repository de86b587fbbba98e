//! The report stage: telling a person (human text on stderr) and a machine
//! (JSON, Markdown, JUnit) what was found and done.

pub mod model;
