//! A small layout engine for the TypeScript expressions and types whose width depends on the
//! declaration (validators, index lookups, calls naming operations).
//!
//! The generated files must pass `prettier --check` unchanged, so every construct whose length
//! varies with the IR is laid out here with the same decisions prettier makes for it (print
//! width 100, two-space indent, trailing commas): a call stays on one line when it fits, hugs its
//! last argument when that is an object or an array, and otherwise puts one argument per line.
//! Object literals and object types are always expanded, which prettier preserves as written,
//! so most of the output never depends on a width decision at all.

/// Prettier's `printWidth` in the repository's `.prettierrc.json`.
pub const PRINT_WIDTH: usize = 100;
const INDENT: usize = 2;

/// A TypeScript expression, as far as the generated code needs one.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Printed as is (identifiers, literals, member accesses).
    Atom(String),
    /// `callee(args)`.
    Call { callee: String, args: Vec<Expr> },
    /// `{ key: value, ...spread }`, always expanded.
    Object(Vec<Prop>),
    /// `[a, b]`, one element per line when it does not fit.
    Array(Vec<Expr>),
}

/// A property of an object literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    KeyValue(String, Expr),
    /// `...expr`.
    Spread(String),
}

impl Expr {
    pub fn atom(text: impl Into<String>) -> Self {
        Expr::Atom(text.into())
    }

    pub fn call(callee: impl Into<String>, args: Vec<Expr>) -> Self {
        Expr::Call {
            callee: callee.into(),
            args,
        }
    }

    /// A single-quoted string literal (prettier's `singleQuote`).
    pub fn string(value: &str) -> Self {
        Expr::Atom(quote(value))
    }

    /// The one-line form, when there is one (expanded objects have none).
    fn flat(&self) -> Option<String> {
        match self {
            Expr::Atom(text) => Some(text.clone()),
            Expr::Call { callee, args } => {
                let args = args.iter().map(Expr::flat).collect::<Option<Vec<_>>>()?;
                Some(format!("{callee}({})", args.join(", ")))
            }
            Expr::Object(props) if props.is_empty() => Some("{}".to_owned()),
            Expr::Object(_) => None,
            Expr::Array(elements) => {
                let elements = elements
                    .iter()
                    .map(Expr::flat)
                    .collect::<Option<Vec<_>>>()?;
                Some(format!("[{}]", elements.join(", ")))
            }
        }
    }

    /// Lays the expression out as the right-hand side of `=` or of an object key, the operator
    /// ending at `column`: prettier's assignment layouts. A "poorly breakable" call (no
    /// argument, or one short identifier or literal) moves to the next line rather than
    /// breaking its parentheses, unless the key is short; so does any call whose head does not
    /// fit after the operator. The result starts with the separating space or line break.
    pub fn render_after_operator(
        &self,
        indent: usize,
        column: usize,
        tail: usize,
        short_key: bool,
    ) -> String {
        if let Some(flat) = self.flat() {
            if column + 1 + flat.len() + tail <= PRINT_WIDTH {
                return format!(" {flat}");
            }
        }
        let head_fits = match self {
            Expr::Call { callee, .. } => {
                column + " ".len() + callee.len() + "(".len() <= PRINT_WIDTH
            }
            _ => true,
        };
        if (!short_key && self.is_poorly_breakable()) || !head_fits {
            let inner = indent + INDENT;
            return format!("\n{}{}", " ".repeat(inner), self.render(inner, inner, tail));
        }
        format!(" {}", self.render(indent, column + 1, tail))
    }

    /// A call chain without arguments or with one short identifier or literal (prettier's
    /// `isPoorlyBreakableMemberOrCallChain`).
    fn is_poorly_breakable(&self) -> bool {
        match self {
            Expr::Atom(_) => true,
            Expr::Call { callee, args } => {
                let callee_is_chain = callee.split('.').all(is_identifier);
                callee_is_chain
                    && match args.as_slice() {
                        [] => true,
                        [Expr::Atom(arg)] => is_lone_short_argument(arg),
                        _ => false,
                    }
            }
            _ => false,
        }
    }

    /// Lays the expression out starting at column `column` of a line indented by `indent`,
    /// followed by `tail` characters on its last line (a `,` or `)`). Continuation lines carry
    /// their absolute indentation; the first line carries none.
    pub fn render(&self, indent: usize, column: usize, tail: usize) -> String {
        if let Some(flat) = self.flat() {
            if column + flat.len() + tail <= PRINT_WIDTH {
                return flat;
            }
        }
        match self {
            Expr::Atom(text) => text.clone(),
            Expr::Object(props) => render_object(props, indent),
            Expr::Array(elements) => render_broken_list("[", "]", elements, indent),
            Expr::Call { callee, args } => render_call(callee, args, indent, column, tail),
        }
    }
}

fn render_object(props: &[Prop], indent: usize) -> String {
    if props.is_empty() {
        return "{}".to_owned();
    }
    let inner = indent + INDENT;
    let mut out = String::from("{\n");
    for prop in props {
        out.push_str(&" ".repeat(inner));
        match prop {
            Prop::KeyValue(key, value) => {
                out.push_str(key);
                out.push(':');
                out.push_str(&value.render_after_operator(
                    inner,
                    inner + key.len() + 1,
                    1,
                    key.len() < SHORT_KEY,
                ));
            }
            Prop::Spread(expr) => {
                out.push_str("...");
                out.push_str(expr);
            }
        }
        out.push_str(",\n");
    }
    out.push_str(&" ".repeat(indent));
    out.push('}');
    out
}

fn render_call(callee: &str, args: &[Expr], indent: usize, column: usize, tail: usize) -> String {
    // Prettier's last-argument expansion: `f(a, {` ... `})` when every other argument is flat
    // and the last one is an object or an array.
    if let Some((last, rest)) = args.split_last() {
        let huggable = matches!(last, Expr::Object(props) if !props.is_empty())
            || matches!(last, Expr::Array(elements) if !elements.is_empty());
        let rest_flat = rest.iter().map(Expr::flat).collect::<Option<Vec<_>>>();
        if let (true, Some(rest_flat)) = (huggable, rest_flat) {
            let mut head = format!("{callee}(");
            for arg in &rest_flat {
                head.push_str(arg);
                head.push_str(", ");
            }
            let opening = if matches!(last, Expr::Object(_)) {
                "{"
            } else {
                "["
            };
            if column + head.len() + opening.len() <= PRINT_WIDTH {
                let body = last.render(indent, column + head.len(), tail + 1);
                return format!("{head}{body})");
            }
        }
    }
    render_broken_list(&format!("{callee}("), ")", args, indent)
}

fn render_broken_list(open: &str, close: &str, items: &[Expr], indent: usize) -> String {
    if items.is_empty() {
        return format!("{open}{close}");
    }
    let inner = indent + INDENT;
    let mut out = format!("{open}\n");
    for item in items {
        out.push_str(&" ".repeat(inner));
        out.push_str(&item.render(inner, inner, 1));
        out.push_str(",\n");
    }
    out.push_str(&" ".repeat(indent));
    out.push_str(close);
    out
}

/// Prettier's `tabWidth + 3`: an object key shorter than this never moves its value to the next
/// line.
const SHORT_KEY: usize = INDENT + 3;

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$')
}

/// Prettier's `isLoneShortArgument`: an identifier or literal of at most a quarter of the
/// print width.
fn is_lone_short_argument(arg: &str) -> bool {
    let threshold = PRINT_WIDTH / 4;
    let literal = arg.starts_with('\'')
        || arg.parse::<f64>().is_ok()
        || arg == "true"
        || arg == "false"
        || arg == "null";
    (is_identifier(arg) || literal) && arg.len() <= threshold
}

/// `<head> <object>` (`export const NAME: Type =` then an object literal), laid out as
/// prettier does: the object opens on the head's line when that fits, otherwise it moves,
/// indented, to the next line.
pub fn render_object_declaration(head: &str, props: Vec<Prop>) -> String {
    let object = Expr::Object(props);
    if head.len() + " {".len() <= PRINT_WIDTH {
        format!("{head} {}", object.render(0, head.len() + 1, 0))
    } else {
        format!("{head}\n  {}", object.render(INDENT, INDENT, 0))
    }
}

/// A single-quoted TypeScript string literal.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.push(ch),
        }
    }
    out.push('\'');
    out
}

/// One link of an index range expression: `.eq('field', value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeStep {
    pub method: &'static str,
    pub field: String,
    pub value: String,
}

/// How the query ends: `.first()`, `.collect()`, `.order('asc').take(limit)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTail(pub Vec<String>);

/// `ctx.db.query(table).withIndex(index, (q) => ...)...`, laid out at `indent` after `prefix`
/// (e.g. `const doc = await `). Prettier always expands such a chain (its arrow function
/// argument is not "simple"); the index range stays on one line when it fits.
pub fn render_index_query(
    table: &str,
    index: &str,
    steps: &[RangeStep],
    tail: &QueryTail,
    indent: usize,
) -> String {
    let link = indent + INDENT;
    let mut out = String::from("ctx.db\n");
    out.push_str(&" ".repeat(link));
    out.push_str(&format!(".query({})\n", quote(table)));
    out.push_str(&" ".repeat(link));
    out.push_str(&render_with_index(index, steps, link));
    for call in &tail.0 {
        out.push('\n');
        out.push_str(&" ".repeat(link));
        out.push('.');
        out.push_str(call);
    }
    out
}

fn render_with_index(index: &str, steps: &[RangeStep], indent: usize) -> String {
    let head = format!(".withIndex({}, (q) =>", quote(index));
    if steps.is_empty() {
        return format!(".withIndex({})", quote(index));
    }
    let calls: Vec<String> = steps
        .iter()
        .map(|step| format!(".{}({}, {})", step.method, quote(&step.field), step.value))
        .collect();
    let chain = format!("q{}", calls.concat());
    if indent + head.len() + " ".len() + chain.len() + ")".len() <= PRINT_WIDTH {
        return format!("{head} {chain})");
    }
    let body = indent + INDENT;
    // A chain of up to three calls stays on one line (prettier merges the short `q` into the
    // first call); a longer one that does not fit goes one call per line.
    let chain = if calls.len() <= 3 || body + chain.len() + ",".len() <= PRINT_WIDTH {
        chain
    } else {
        let mut expanded = String::from("q");
        for call in &calls {
            expanded.push('\n');
            expanded.push_str(&" ".repeat(body + INDENT));
            expanded.push_str(call);
        }
        expanded
    };
    format!(
        "{head}\n{}{chain},\n{})",
        " ".repeat(body),
        " ".repeat(indent)
    )
}

/// A TypeScript type, for the `ComponentApi` that `npx convex codegen` would write.
#[derive(Debug, Clone, PartialEq)]
pub enum TsType {
    Atom(String),
    /// `{ key: T; key?: T }`, always expanded (`{}` when empty).
    Object(Vec<TsProp>),
    /// `Array<T>`.
    Array(Box<TsType>),
    /// `A | B`.
    Union(Vec<TsType>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TsProp {
    pub key: String,
    pub optional: bool,
    pub ty: TsType,
}

impl TsType {
    fn flat(&self) -> Option<String> {
        match self {
            TsType::Atom(text) => Some(text.clone()),
            TsType::Object(props) if props.is_empty() => Some("{}".to_owned()),
            TsType::Object(_) => None,
            TsType::Array(element) => Some(format!("Array<{}>", element.flat()?)),
            TsType::Union(members) => {
                let members = members
                    .iter()
                    .map(TsType::flat)
                    .collect::<Option<Vec<_>>>()?;
                Some(members.join(" | "))
            }
        }
    }

    /// `{...} | null`: prettier keeps such a union on the object's lines.
    fn is_huggable_union(&self) -> bool {
        match self {
            TsType::Union(members) => {
                let objects = members
                    .iter()
                    .filter(|member| matches!(member, TsType::Object(props) if !props.is_empty()))
                    .count();
                objects == 1
                    && members.iter().all(|member| {
                        matches!(member, TsType::Object(_))
                            || matches!(member, TsType::Atom(atom) if atom == "null")
                    })
            }
            _ => false,
        }
    }

    fn hugs(&self) -> bool {
        matches!(self, TsType::Object(props) if !props.is_empty()) || self.is_huggable_union()
    }

    /// Lays the type out like [`Expr::render`].
    pub fn render(&self, indent: usize, column: usize, tail: usize) -> String {
        if let Some(flat) = self.flat() {
            if column + flat.len() + tail <= PRINT_WIDTH {
                return flat;
            }
        }
        match self {
            TsType::Atom(text) => text.clone(),
            TsType::Object(props) => render_type_object(props, indent),
            TsType::Array(element) => {
                if element.hugs() {
                    format!("Array<{}>", element.render(indent, column + 6, tail + 1))
                } else {
                    let inner = indent + INDENT;
                    format!(
                        "Array<\n{}{}\n{}>",
                        " ".repeat(inner),
                        element.render_broken_union_or(inner),
                        " ".repeat(indent)
                    )
                }
            }
            TsType::Union(members) => {
                if self.is_huggable_union() {
                    members
                        .iter()
                        .map(|member| member.render(indent, column, 0))
                        .collect::<Vec<_>>()
                        .join(" | ")
                } else {
                    members
                        .iter()
                        .map(|member| member.render(indent, column + 2, 0))
                        .collect::<Vec<_>>()
                        .join(&format!("\n{}| ", " ".repeat(indent)))
                }
            }
        }
    }

    /// On a line of its own: a union that does not fit gets a leading `| ` per member.
    fn render_broken_union_or(&self, indent: usize) -> String {
        match self {
            TsType::Union(_) if !self.is_huggable_union() => {
                let flat = self.flat();
                match flat {
                    Some(flat) if indent + flat.len() <= PRINT_WIDTH => flat,
                    _ => format!("| {}", self.render(indent, indent + 2, 0)),
                }
            }
            _ => self.render(indent, indent, 0),
        }
    }
}

fn render_type_object(props: &[TsProp], indent: usize) -> String {
    if props.is_empty() {
        return "{}".to_owned();
    }
    let inner = indent + INDENT;
    let mut out = String::from("{\n");
    for prop in props {
        out.push_str(&" ".repeat(inner));
        let key = format!("{}{}: ", prop.key, if prop.optional { "?" } else { "" });
        let column = inner + key.len();
        match (&prop.ty, prop.ty.flat()) {
            // A union that does not fit after its key moves to the next lines, one member each.
            (TsType::Union(_), Some(flat))
                if column + flat.len() > PRINT_WIDTH && !prop.ty.is_huggable_union() =>
            {
                out.push_str(key.trim_end());
                out.push('\n');
                out.push_str(&" ".repeat(inner + INDENT));
                out.push_str("| ");
                out.push_str(&prop.ty.render(inner + INDENT, inner + INDENT + 2, 0));
            }
            _ => {
                out.push_str(&key);
                out.push_str(&prop.ty.render(inner, column, 0));
            }
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent));
    out.push('}');
    out
}

/// `Name<A, B, C>` with one argument per line when it does not fit (no trailing comma: prettier
/// writes none in type arguments).
pub fn render_generic(name: &str, args: &[TsType], indent: usize, column: usize) -> String {
    let flat = args.iter().map(TsType::flat).collect::<Option<Vec<_>>>();
    if let Some(flat) = flat {
        let line = format!("{name}<{}>", flat.join(", "));
        if column + line.len() <= PRINT_WIDTH {
            return line;
        }
    }
    let inner = indent + INDENT;
    let mut out = format!("{name}<\n");
    let rendered: Vec<String> = args
        .iter()
        .map(|arg| format!("{}{}", " ".repeat(inner), arg.render_broken_union_or(inner)))
        .collect();
    out.push_str(&rendered.join(",\n"));
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push('>');
    out
}

/// `import { a, b } from 'module'`, one specifier per line when it does not fit.
pub fn render_import(specifiers: &[String], module: &str, type_only: bool) -> String {
    let keyword = if type_only { "import type" } else { "import" };
    let flat = format!(
        "{keyword} {{ {} }} from {}",
        specifiers.join(", "),
        quote(module)
    );
    if flat.len() <= PRINT_WIDTH {
        return flat;
    }
    let mut out = format!("{keyword} {{\n");
    for specifier in specifiers {
        out.push_str("  ");
        out.push_str(specifier);
        out.push_str(",\n");
    }
    out.push_str(&format!("}} from {}", quote(module)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_stays_flat_when_it_fits() {
        let expr = Expr::call("v.optional", vec![Expr::call("v.string", vec![])]);
        assert_eq!(expr.render(0, 0, 0), "v.optional(v.string())");
    }

    #[test]
    fn call_hugs_a_last_object() {
        let expr = Expr::call(
            "v.object",
            vec![Expr::Object(vec![Prop::KeyValue(
                "a".into(),
                Expr::atom("v.string()"),
            )])],
        );
        assert_eq!(expr.render(0, 0, 0), "v.object({\n  a: v.string(),\n})");
    }

    #[test]
    fn long_call_breaks_one_argument_per_line() {
        let literals = (0..12)
            .map(|i| Expr::call("v.literal", vec![Expr::string(&format!("value_{i}"))]))
            .collect();
        let rendered = Expr::call("v.union", literals).render(0, 0, 0);
        assert!(rendered.starts_with("v.union(\n  v.literal('value_0'),\n"));
        assert!(rendered.ends_with("  v.literal('value_11'),\n)"));
    }

    #[test]
    fn quotes_escape() {
        assert_eq!(quote("it's"), "'it\\'s'");
    }
}
