//! Name conversions between Rust and the wire, and the naming rules of Convex.

/// `execution_id` → `executionId`.
pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper_next = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper_next = !out.is_empty();
        } else if upper_next {
            out.extend(ch.to_uppercase());
            upper_next = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `updateByOCFPExpiresAt` → `update_by_ocfp_expires_at`; `TimedOut` → `timed_out`.
///
/// A run of capitals is one word (`OCFP`), whose last capital starts the next word when a
/// lower-case letter follows (`OCFPExpires` → `ocfp_expires`).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &ch) in chars.iter().enumerate() {
        if ch.is_uppercase() {
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let starts_word = match previous {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(char::is_lowercase),
                Some(_) => false,
            };
            if starts_word {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// `taskExecutionsStorage` → `TaskExecutionsStorage`.
pub fn pascal_case(name: &str) -> String {
    let camel = camel_case(name);
    let mut chars = camel.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Convex's limit on the length of table, field and index names.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is an (ASCII) JavaScript identifier: what the generated TypeScript can export
/// under that name.
pub fn is_js_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$')
}

/// Why Convex would refuse `name` as a table, field or index name, if it would.
pub fn convex_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name must not be empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "`{name}` is {} characters long; Convex allows at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if name.starts_with('_') || name.starts_with('$') {
        return Some(format!(
            "`{name}` starts with `{}`; Convex reserves such names for system fields",
            &name[..1]
        ));
    }
    if !name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        || name.starts_with(|ch: char| ch.is_ascii_digit())
    {
        return Some(format!(
            "`{name}` is not an identifier (ASCII letters, digits and `_`, not starting with a digit)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_joins_words() {
        assert_eq!(camel_case("execution_id"), "executionId");
        assert_eq!(camel_case("shard"), "shard");
        assert_eq!(
            camel_case("waiting_for_children_started_at"),
            "waitingForChildrenStartedAt"
        );
    }

    #[test]
    fn snake_case_splits_acronyms() {
        assert_eq!(snake_case("insertMany"), "insert_many");
        assert_eq!(
            snake_case("updateByStatusAndOCFPStatusAndACCZeroAndReturn"),
            "update_by_status_and_ocfp_status_and_acc_zero_and_return"
        );
        assert_eq!(
            snake_case("updateByOCFPExpiresAt"),
            "update_by_ocfp_expires_at"
        );
        assert_eq!(
            snake_case("updateByExecutorIdAndNPCAndReturn"),
            "update_by_executor_id_and_npc_and_return"
        );
        assert_eq!(snake_case("TimedOut"), "timed_out");
        assert_eq!(snake_case("Ready"), "ready");
    }

    #[test]
    fn pascal_case_capitalises() {
        assert_eq!(
            pascal_case("taskExecutionsStorage"),
            "TaskExecutionsStorage"
        );
    }

    #[test]
    fn convex_names_are_checked() {
        assert_eq!(convex_name_problem("executionId"), None);
        assert!(convex_name_problem("_id").is_some());
        assert!(convex_name_problem("$x").is_some());
        assert!(convex_name_problem("a-b").is_some());
        assert!(convex_name_problem("1a").is_some());
        assert!(convex_name_problem(&"a".repeat(65)).is_some());
        assert_eq!(convex_name_problem(&"a".repeat(64)), None);
    }
}
