//! JSDoc comments from the declaration's doc comments.

use serde::Serialize;

/// The formatter's line width.
const LINE_WIDTH: usize = crate::format::LINE_WIDTH as usize;

/// A doc comment as the `doc` partial prints it (`/** line */`, or one ` * line` per line).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Doc {
    /// The text's lines, wrapped to fit the print width at the comment's indentation; empty
    /// when there is no text (no comment is printed).
    pub lines: Vec<String>,
    /// The comment fits on one line: `/** text */`.
    pub one_line: bool,
}

/// The doc comment of a declaration indented by `indent` columns (the formatter indents the
/// comment; its lines are wrapped here, as the formatter never reflows a comment).
pub fn js_doc(text: &str, indent: usize) -> Doc {
    let width = LINE_WIDTH.saturating_sub(indent + " * ".len()).max(20);
    let text = strip_rustdoc_links(text);
    let lines: Vec<String> = text
        .trim()
        .lines()
        // `*/` would end the comment early.
        .map(|line| line.trim_end().replace("*/", "*\\/"))
        .flat_map(|line| wrap(&line, width))
        .collect();
    let one_line = match lines.as_slice() {
        [line] => indent + "/** ".len() + line.len() + " */".len() <= LINE_WIDTH,
        _ => false,
    };
    Doc { lines, one_line }
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
        assert!(js_doc("", 0).lines.is_empty());
        let doc = js_doc("Hello.", 0);
        assert_eq!((doc.lines, doc.one_line), (vec!["Hello.".to_owned()], true));
        let doc = js_doc("a\n\nb", 2);
        assert_eq!(doc.lines, vec!["a", "", "b"]);
        assert!(!doc.one_line);
        assert_eq!(js_doc("x */ y", 0).lines, vec!["x *\\/ y"]);
        assert_eq!(
            js_doc("Kind of an [`ExecutionError`], in [`Doc`](crate::Doc).", 0).lines,
            vec!["Kind of an `ExecutionError`, in `Doc`."]
        );
        assert!(!js_doc(&"word ".repeat(19), 0).one_line);
    }
}
