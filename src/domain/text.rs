//! Small validators for text fields shared by several resources.

use crate::error::Violations;

/// Trims an optional text; empty becomes `None`; longer than `max` characters is an error.
pub fn optional(v: &mut Violations, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let trimmed = value.map(str::trim).filter(|s| !s.is_empty())?;
    if trimmed.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
        return None;
    }
    if trimmed.chars().any(|c| c.is_control()) {
        v.add(field, "must not contain control characters");
        return None;
    }
    Some(trimmed.to_string())
}

/// Like `optional`, but absent or empty is an error.
pub fn required(v: &mut Violations, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    if value.map(str::trim).filter(|s| !s.is_empty()).is_none() {
        v.add(field, "is required");
        return None;
    }
    optional(v, field, value, max)
}

/// An external id (the ERP's key): 1–128 printable characters without `/`.
pub fn external_id(v: &mut Violations, field: &str, value: Option<&str>) -> Option<String> {
    let id = optional(v, field, value, 128)?;
    if id.contains('/') {
        v.add(field, "must not contain `/`");
        return None;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        let mut v = Violations::new();
        assert_eq!(optional(&mut v, "a", Some("  x "), 5), Some("x".into()));
        assert_eq!(optional(&mut v, "a", Some("   "), 5), None);
        assert!(v.is_empty());
        assert_eq!(optional(&mut v, "a", Some("toolong"), 5), None);
        assert_eq!(required(&mut v, "b", None, 5), None);
        assert_eq!(external_id(&mut v, "c", Some("a/b")), None);
        assert_eq!(optional(&mut v, "d", Some("a\u{0}b"), 5), None);
        let errors = v.into_result(()).expect_err("four errors");
        match errors {
            crate::error::AppError::Validation(list) => assert_eq!(list.len(), 4),
            other => panic!("unexpected {other:?}"),
        }
    }
}
