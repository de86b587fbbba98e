//! The rules stage: data files in `rules/`, conditions in CEL, evaluated
//! over facts.
