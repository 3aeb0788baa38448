//! JSDoc comments from the declaration's doc comments.

/// A `/** ... */` block for a declaration indented by `indent` (continuation lines carry the
/// indentation, the first does not); empty when there is no text.
pub fn js_doc(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    // ` * ` before each line; the text wraps at the print width.
    let width = crate::layout::PRINT_WIDTH
        .saturating_sub(indent + 3)
        .max(20);
    let text = strip_rustdoc_links(text);
    let lines: Vec<String> = text
        .trim()
        .lines()
        // `*/` would end the comment early.
        .map(|line| line.trim_end().replace("*/", "*\\/"))
        .flat_map(|line| wrap(&line, width))
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [line] if indent + line.len() + 7 <= crate::layout::PRINT_WIDTH => format!("/** {line} */"),
        _ => {
            let mut out = String::from("/**\n");
            for line in &lines {
                if line.is_empty() {
                    out.push_str(&format!("{pad} *\n"));
                } else {
                    out.push_str(&format!("{pad} * {line}\n"));
                }
            }
            out.push_str(&format!("{pad} */"));
            out
        }
    }
}

/// Rustdoc links mean nothing in TypeScript: ``[`Doc`](crate::Doc)`` and ``[`Doc`]`` become
/// `` `Doc` ``.
fn strip_rustdoc_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("[`") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find("`]") else {
            out.push_str(&rest[open..]);
            return out;
        };
        out.push_str(&after[..close + 1]);
        rest = &after[close + 2..];
        if rest.starts_with('(') {
            if let Some(end) = rest.find(')') {
                rest = &rest[end + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a line at spaces so that no piece is longer than `width` (a longer word stays whole).
fn wrap(line: &str, width: usize) -> Vec<String> {
    if line.len() <= width {
        return vec![line.to_owned()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push(current);
    out
}

#[cfg(test)]
mod tests {
    use super::js_doc;

    #[test]
    fn one_line_and_several() {
        assert_eq!(js_doc("", 0), "");
        assert_eq!(js_doc("Hello.", 0), "/** Hello. */");
        assert_eq!(js_doc("a\n\nb", 2), "/**\n   * a\n   *\n   * b\n   */");
        assert_eq!(js_doc("x */ y", 0), "/** x *\\/ y */");
        assert_eq!(
            js_doc("Kind of an [`ExecutionError`], in [`Doc`](crate::Doc).", 0),
            "/** Kind of an `ExecutionError`, in `Doc`. */"
        );
    }
}
