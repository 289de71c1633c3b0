//! Condition expressions for spec fields such as `"error_rate < 0.05"` or `"failure_rate > 0.1"`.
//!
//! Owns: parsing condition text into a private AST and evaluating it against named values.
//! Must not touch: metrics sources, I/O or the rest of the crate; callers supply values through a
//! lookup closure. Std only (no `crate::` imports outside its tests).
//!
//! Grammar, lowest precedence first (`not` binds tightest and applies to the next comparison or
//! group, so `not x < 1` means `not (x < 1)`):
//!
//! ```text
//! or      := and (("or" | "||") and)*
//! and     := unary (("and" | "&&") unary)*
//! unary   := ("not" | "!") unary | "(" or ")" | "true" | "false" | operand CMP operand
//! operand := IDENT | NUMBER          CMP := < <= > >= == !=
//! ```
//!
//! Identifiers are `[A-Za-z_][A-Za-z0-9_.]*`; numbers are plain decimals with an optional leading
//! `-`, fraction and exponent, and no unit suffix. Comparisons cannot be chained. Nesting (groups
//! and `not`) is limited to 64 levels, so hostile input cannot overflow the stack.

use std::collections::HashMap;
use std::fmt;

const MAX_DEPTH: usize = 64;

/// A parsed condition. Equality compares the source text.
#[derive(Clone)]
pub struct Expr {
    source: String,
    root: Node,
    idents: Vec<String>,
}

/// A parse error; `offset` is the byte offset of the problem in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.offset + 1, self.message)
    }
}

impl std::error::Error for ExprError {}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Var(usize),
    Num(f64),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(bool),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp(Operand, Cmp, Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident,
    Num(f64),
    Cmp(Cmp),
    And,
    Or,
    Not,
    LParen,
    RParen,
    True,
    False,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        offset,
        message: message.into(),
    })
}

/// Backquoted token text for messages, shortened so huge inputs give short errors.
fn quote(text: &str) -> String {
    if text.chars().count() > 32 {
        format!("`{}…`", text.chars().take(32).collect::<String>())
    } else {
        format!("`{text}`")
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let (c, start) = (at(i), i);
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            while is_word(at(i)) {
                i += 1;
            }
            match src.get(start..i).unwrap_or("") {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                "true" => Tok::True,
                "false" => Tok::False,
                _ => Tok::Ident,
            }
        } else if c.is_ascii_digit() || ((c == b'-' || c == b'.') && at(i + 1).is_ascii_digit()) {
            let (tok, end) = lex_number(src, start)?;
            i = end;
            tok
        } else {
            let (tok, len) = match (c, at(i + 1)) {
                (b'<', b'=') => (Tok::Cmp(Cmp::Le), 2),
                (b'>', b'=') => (Tok::Cmp(Cmp::Ge), 2),
                (b'=', b'=') => (Tok::Cmp(Cmp::Eq), 2),
                (b'!', b'=') => (Tok::Cmp(Cmp::Ne), 2),
                (b'&', b'&') => (Tok::And, 2),
                (b'|', b'|') => (Tok::Or, 2),
                (b'<', b'>') => return err(start, "unknown operator `<>`; did you mean `!=`?"),
                (b'=', b'<') => return err(start, "unknown operator `=<`; did you mean `<=`?"),
                (b'=', b'>') => return err(start, "unknown operator `=>`; did you mean `>=`?"),
                (b'=', _) => return err(start, "unknown operator `=`; did you mean `==`?"),
                (b'&', _) => {
                    return err(start, "unknown operator `&`; did you mean `&&` or `and`?")
                }
                (b'|', _) => return err(start, "unknown operator `|`; did you mean `||` or `or`?"),
                (b'<', _) => (Tok::Cmp(Cmp::Lt), 1),
                (b'>', _) => (Tok::Cmp(Cmp::Gt), 1),
                (b'!', _) => (Tok::Not, 1),
                (b'(', _) => (Tok::LParen, 1),
                (b')', _) => (Tok::RParen, 1),
                _ => {
                    let ch = src
                        .get(start..)
                        .and_then(|s| s.chars().next())
                        .unwrap_or('?');
                    return err(
                        start,
                        format!("unexpected character {}", quote(&ch.to_string())),
                    );
                }
            };
            i += len;
            tok
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: b.len(),
        end: b.len(),
    });
    Ok(out)
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), ExprError> {
    let b = src.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let digits = |mut i: usize| {
        while at(i).is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = if at(start) == b'-' { start + 1 } else { start };
    i = digits(i);
    if at(i) == b'.' && at(i + 1).is_ascii_digit() {
        i = digits(i + 1);
    }
    let exp = if at(i + 1) == b'+' || at(i + 1) == b'-' {
        i + 2
    } else {
        i + 1
    };
    if (at(i) == b'e' || at(i) == b'E') && at(exp).is_ascii_digit() {
        i = digits(exp);
    }
    let mut end = i;
    while is_word(at(end)) || at(end) == b'%' {
        end += 1;
    }
    let whole = quote(src.get(start..end).unwrap_or(""));
    if end > i {
        return if at(i).is_ascii_alphabetic() || at(i) == b'%' {
            let plain = src.get(start..i).unwrap_or("");
            err(
                start,
                format!("number {whole} has a unit suffix; write a plain number such as `{plain}`"),
            )
        } else {
            err(start, format!("malformed number {whole}"))
        };
    }
    match src.get(start..i).unwrap_or("").parse::<f64>() {
        Ok(v) if v.is_finite() => Ok((Tok::Num(v), i)),
        Ok(_) => err(start, format!("number {whole} is out of range")),
        Err(_) => err(start, format!("malformed number {whole}")),
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    eof: Token,
    idents: Vec<String>,
    /// Index of each name in `idents` (a scan of `idents` per operand made many distinct
    /// identifiers quadratic).
    index: HashMap<&'a str, usize>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        self.toks.get(self.pos).unwrap_or(&self.eof)
    }
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn text(&self, t: &Token) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or("")
    }
    fn describe(&self, t: &Token) -> String {
        if t.tok == Tok::Eof {
            "the end of the expression".into()
        } else {
            quote(self.text(t))
        }
    }
    /// Error for a missing piece: "unterminated expression" at the end, else "..., found `x`".
    fn expected<T>(&self, what: &str) -> Result<T, ExprError> {
        let t = self.peek();
        if t.tok == Tok::Eof {
            err(t.start, format!("unterminated expression: expected {what}"))
        } else {
            err(
                t.start,
                format!("unexpected token {}; expected {what}", self.describe(t)),
            )
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Node, ExprError> {
        self.list(depth, Tok::Or)
    }

    /// `sep`-separated list: `or` of `and`s, `and` of unaries.
    fn list(&mut self, depth: usize, sep: Tok) -> Result<Node, ExprError> {
        let mut items = Vec::new();
        loop {
            items.push(if sep == Tok::Or {
                self.list(depth, Tok::And)?
            } else {
                self.parse_unary(depth)?
            });
            if self.peek().tok != sep {
                break;
            }
            self.bump();
        }
        if items.len() == 1 {
            if let Some(n) = items.pop() {
                return Ok(n);
            }
        }
        Ok(if sep == Tok::Or {
            Node::Or(items)
        } else {
            Node::And(items)
        })
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Node, ExprError> {
        let t = self.peek().clone();
        if matches!(t.tok, Tok::Not | Tok::LParen) && depth >= MAX_DEPTH {
            return err(
                t.start,
                format!("expression nested too deeply (limit {MAX_DEPTH} levels)"),
            );
        }
        match t.tok {
            Tok::Not => {
                self.bump();
                Ok(Node::Not(Box::new(self.parse_unary(depth + 1)?)))
            }
            Tok::LParen => {
                self.bump();
                let inner = self.parse_or(depth + 1)?;
                if self.peek().tok != Tok::RParen {
                    return self
                        .expected(&format!("`)` to close the `(` at column {}", t.start + 1));
                }
                self.bump();
                Ok(inner)
            }
            Tok::True => {
                self.bump();
                Ok(Node::Lit(true))
            }
            Tok::False => {
                self.bump();
                Ok(Node::Lit(false))
            }
            Tok::Ident | Tok::Num(_) => self.parse_cmp(),
            Tok::Eof if self.pos == 0 => err(0, "empty expression"),
            _ => self.expected("a condition"),
        }
    }

    fn parse_cmp(&mut self) -> Result<Node, ExprError> {
        let lhs_tok = self.bump();
        let lhs = self.operand(&lhs_tok);
        let op = match self.peek().tok {
            Tok::Cmp(op) => op,
            _ => {
                let t = self.peek();
                let found = if t.tok == Tok::Eof {
                    String::new()
                } else {
                    format!(", found {}", self.describe(t))
                };
                return err(
                    t.start,
                    format!(
                        "expected a comparison operator after {}{found}",
                        quote(self.text(&lhs_tok))
                    ),
                );
            }
        };
        let op_tok = self.bump();
        if !matches!(self.peek().tok, Tok::Ident | Tok::Num(_)) {
            return self.expected(&format!(
                "a number or identifier after {}",
                quote(self.text(&op_tok))
            ));
        }
        let rhs_tok = self.bump();
        let rhs = self.operand(&rhs_tok);
        if let Tok::Cmp(_) = self.peek().tok {
            return err(
                self.peek().start,
                "comparisons cannot be chained; join them with `and`",
            );
        }
        Ok(Node::Cmp(lhs, op, rhs))
    }

    fn operand(&mut self, t: &Token) -> Operand {
        if let Tok::Num(v) = t.tok {
            return Operand::Num(v);
        }
        let name = self.text(t);
        match self.index.get(name) {
            Some(i) => Operand::Var(*i),
            None => {
                self.idents.push(name.to_string());
                self.index.insert(name, self.idents.len() - 1);
                Operand::Var(self.idents.len() - 1)
            }
        }
    }
}

fn eval_node(node: &Node, vals: &[f64]) -> bool {
    let val = |o: &Operand| match o {
        Operand::Var(i) => vals.get(*i).copied().unwrap_or(f64::NAN),
        Operand::Num(n) => *n,
    };
    match node {
        Node::Lit(b) => *b,
        Node::Not(n) => !eval_node(n, vals),
        Node::And(items) => items.iter().all(|n| eval_node(n, vals)),
        Node::Or(items) => items.iter().any(|n| eval_node(n, vals)),
        Node::Cmp(a, op, b) => {
            let (a, b) = (val(a), val(b));
            match op {
                Cmp::Lt => a < b,
                Cmp::Le => a <= b,
                Cmp::Gt => a > b,
                Cmp::Ge => a >= b,
                Cmp::Eq => a == b,
                Cmp::Ne => a != b,
            }
        }
    }
}

impl Expr {
    /// Parse condition text.
    ///
    /// # Errors
    /// An [`ExprError`] with the byte offset and a message for any text outside the grammar.
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let toks = lex(src)?;
        let eof = Token {
            tok: Tok::Eof,
            start: src.len(),
            end: src.len(),
        };
        let mut p = Parser {
            src,
            toks,
            pos: 0,
            eof,
            idents: Vec::new(),
            index: HashMap::new(),
        };
        let root = p.parse_or(0)?;
        let t = p.peek().clone();
        match t.tok {
            Tok::Eof => Ok(Expr {
                source: src.to_string(),
                root,
                idents: p.idents,
            }),
            Tok::RParen => err(t.start, "unexpected token `)` with no matching `(`"),
            _ => {
                let word = p.text(&t);
                let hint = if matches!(word.to_ascii_lowercase().as_str(), "and" | "or" | "not") {
                    format!(" (keywords are lowercase: `{}`)", word.to_ascii_lowercase())
                } else {
                    String::new()
                };
                err(t.start, format!("unexpected token {}; expected `and`, `or` or the end of the expression{hint}", quote(word)))
            }
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Distinct identifiers, in order of first appearance.
    pub fn identifiers(&self) -> Vec<String> {
        self.idents.clone()
    }

    /// Evaluate with a lookup; returns Ok(bool) or Err(missing identifier names) when any identifier
    /// needed has no value (None), or a value is NaN. Every identifier is checked, even ones a
    /// short-circuit would skip: no data is never a pass.
    ///
    /// # Errors
    /// The names (in first-appearance order) whose lookup gave `None` or NaN.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<f64>) -> Result<bool, Vec<String>> {
        let mut vals = Vec::with_capacity(self.idents.len());
        let mut missing = Vec::new();
        for name in &self.idents {
            match lookup(name) {
                Some(v) if !v.is_nan() => vals.push(v),
                _ => {
                    missing.push(name.clone());
                    vals.push(f64::NAN);
                }
            }
        }
        if missing.is_empty() {
            Ok(eval_node(&self.root, &vals))
        } else {
            Err(missing)
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fully parenthesised rendering of the AST, to check precedence.
    fn shape(e: &Expr) -> String {
        fn go(n: &Node, ids: &[String]) -> String {
            let op = |o: &Operand| match o {
                Operand::Var(i) => ids[*i].clone(),
                Operand::Num(v) => v.to_string(),
            };
            let join = |items: &[Node], sep: &str| {
                format!(
                    "({})",
                    items
                        .iter()
                        .map(|n| go(n, ids))
                        .collect::<Vec<_>>()
                        .join(sep)
                )
            };
            match n {
                Node::Lit(b) => b.to_string(),
                Node::Not(n) => format!("!{}", go(n, ids)),
                Node::And(items) => join(items, " & "),
                Node::Or(items) => join(items, " | "),
                Node::Cmp(a, c, b) => format!("{}{:?}{}", op(a), c, op(b)),
            }
        }
        go(&e.root, &e.idents)
    }
    fn parse(s: &str) -> Expr {
        Expr::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }
    fn perr(s: &str) -> ExprError {
        Expr::parse(s)
            .err()
            .unwrap_or_else(|| panic!("{s:?} should fail"))
    }
    fn with<'a>(vars: &'a [(&'a str, f64)]) -> impl Fn(&str) -> Option<f64> + 'a {
        move |n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
    }
    fn run(s: &str, vars: &[(&str, f64)]) -> Result<bool, Vec<String>> {
        parse(s).eval(&with(vars))
    }

    #[test]
    fn precedence() {
        assert_eq!(
            shape(&parse("a < 1 or b < 2 and c < 3")),
            "(aLt1 | (bLt2 & cLt3))"
        );
        assert_eq!(shape(&parse("not a < 1 and b < 2")), "(!aLt1 & bLt2)");
        assert_eq!(
            shape(&parse("(a < 1 or b < 2) and c < 3")),
            "((aLt1 | bLt2) & cLt3)"
        );
        assert_eq!(
            shape(&parse("!a<1 || b>2 && !(c==3)")),
            "(!aLt1 | (bGt2 & !cEq3))"
        );
        assert_eq!(
            shape(&parse(
                "error_rate < 0.05 and not (response_time >= 200 or x == 1)"
            )),
            "(error_rateLt0.05 & !(response_timeGe200 | xEq1))"
        );
        assert_eq!(run("true or false and false", &[]), Ok(true));
        assert_eq!(run("false and true or true", &[]), Ok(true));
        assert_eq!(run("not true or true", &[]), Ok(true));
    }

    #[test]
    fn every_operator() {
        let v = [("x", 2.0), ("m.p_99", 3.0)];
        for (s, want) in [
            ("x < 3", true),
            ("x < 2", false),
            ("x <= 2", true),
            ("x <= 1.5", false),
            ("x > 1", true),
            ("x > 2", false),
            ("x >= 2", true),
            ("x >= 2.5", false),
            ("x == 2", true),
            ("x == 3", false),
            ("x != 3", true),
            ("x != 2", false),
            ("m.p_99 > x", true),
            ("1 < 2", true),
            ("x<3 and x>1", true),
            ("x<3 && x>2", false),
            ("x>3 or x==2", true),
            ("x>3 || x<1", false),
            ("not x > 3", true),
            ("! x < 3", false),
            ("!(x<3)", false),
            ("not not x < 3", true),
            ("true", true),
            ("false", false),
            ("not false", true),
            ("x == 2e0", true),
            ("x > -1", true),
            ("x < .5e1", true),
            ("x < 1.5E-2", false),
            ("x>=-2.5e+1", true),
        ] {
            assert_eq!(run(s, &v), Ok(want), "{s}");
        }
    }

    #[test]
    fn missing_identifiers_are_never_a_pass() {
        assert_eq!(
            run("a < 1 or b < 2", &[("a", 0.0)]),
            Err(vec!["b".to_string()])
        );
        assert_eq!(
            run("false and (b < 2 or c > 1 or b > 0)", &[]),
            Err(vec!["b".into(), "c".into()])
        );
        assert_eq!(run("a < 1", &[("a", f64::NAN)]), Err(vec!["a".to_string()]));
        assert_eq!(run("a < 1", &[("a", f64::INFINITY)]), Ok(false));
        let e = parse("b < 1 and a > 2 or b == a and c != 0");
        assert_eq!(e.identifiers(), vec!["b", "a", "c"]);
        assert_eq!(parse("true").identifiers(), Vec::<String>::new());
    }

    #[test]
    fn errors_and_offsets() {
        let cases = [
            ("", 0, "empty expression"),
            ("   ", 0, "empty expression"),
            (")", 0, "unexpected token `)`; expected a condition"),
            ("a < 1)", 5, "unexpected token `)` with no matching `(`"),
            ("error_rate", 10, "expected a comparison operator after `error_rate`"),
            ("error_rate and x < 1", 11, "expected a comparison operator after `error_rate`, found `and`"),
            ("7 or x < 1", 2, "expected a comparison operator after `7`, found `or`"),
            ("error_rate <", 12, "unterminated expression: expected a number or identifier after `<`"),
            ("a < 1 and", 9, "unterminated expression: expected a condition"),
            ("(a < 1", 6, "unterminated expression: expected `)` to close the `(` at column 1"),
            ("(a < 1 b", 7, "unexpected token `b`; expected `)` to close the `(` at column 1"),
            ("a = 1", 2, "unknown operator `=`; did you mean `==`?"),
            ("a =< 1", 2, "unknown operator `=<`; did you mean `<=`?"),
            ("a <> 1", 2, "unknown operator `<>`; did you mean `!=`?"),
            ("a<1 & b<2", 4, "unknown operator `&`; did you mean `&&` or `and`?"),
            ("a < 1 < 2", 6, "comparisons cannot be chained; join them with `and`"),
            ("a < 1 b", 6, "unexpected token `b`; expected `and`, `or` or the end of the expression"),
            ("a < 1 AND b < 2", 6, "unexpected token `AND`; expected `and`, `or` or the end of the expression (keywords are lowercase: `and`)"),
            ("a < true", 4, "unexpected token `true`; expected a number or identifier after `<`"),
            ("rt < 200ms", 5, "number `200ms` has a unit suffix; write a plain number such as `200`"),
            ("rt < 5%", 5, "number `5%` has a unit suffix; write a plain number such as `5`"),
            ("rt < 1.2.3", 5, "malformed number `1.2.3`"),
            ("rt < 1e", 5, "number `1e` has a unit suffix; write a plain number such as `1`"),
            ("rt < 1.", 5, "malformed number `1.`"),
            ("rt < 1e999", 5, "number `1e999` is out of range"),
            ("rt ≤ 1", 3, "unexpected character `≤`"),
            ("a - 1 < 2", 2, "unexpected character `-`"),
            ("x >= +2", 5, "unexpected character `+`"),
        ];
        for (src, offset, msg) in cases {
            assert_eq!(
                perr(src),
                ExprError {
                    offset,
                    message: msg.to_string()
                },
                "{src:?}"
            );
        }
        assert_eq!(
            perr("a = 1").to_string(),
            "at column 3: unknown operator `=`; did you mean `==`?"
        );
    }

    #[test]
    fn deep_nesting_is_limited() {
        let nest = |n: usize| format!("{}a < 1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(run(&nest(64), &[("a", 0.0)]), Ok(true));
        let e = perr(&nest(65));
        assert_eq!(
            (e.offset, e.message.as_str()),
            (64, "expression nested too deeply (limit 64 levels)")
        );
        assert!(perr(&nest(10_000)).message.contains("nested too deeply"));
        assert!(perr(&"(".repeat(10_000))
            .message
            .contains("nested too deeply"));
        assert!(perr(&format!("{}a < 1", "not ".repeat(10_000)))
            .message
            .contains("nested too deeply"));
        assert!(perr(&format!("{}a < 1", "!".repeat(10_000)))
            .message
            .contains("nested too deeply"));
        assert!(perr(&")".repeat(10_000))
            .message
            .contains("unexpected token `)`"));
    }

    #[test]
    fn long_and_garbage_input_never_panics() {
        let long = vec!["a < 1"; 50_000].join(" and ");
        assert_eq!(run(&long, &[("a", 0.0)]), Ok(true));
        let e = perr(&format!("{} x", "y".repeat(100_000)));
        assert!(e.message.len() < 120, "{}", e.message);
        let src = "not (err.rate <= 1.5e-3 || x != -2) && true";
        for i in 0..=src.len() {
            let _ = Expr::parse(&src[..i]);
        }
        let alphabet: Vec<char> = "ab1.e-+()<>=!&| \t_né%".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5_000 {
            let s: String = (0..(seed % 24) as usize)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            if let Ok(e) = Expr::parse(&s) {
                let _ = e.eval(&|_| Some(1.0));
            }
        }
    }

    #[test]
    fn many_distinct_identifiers_parse_in_linear_time() {
        // Found in the fuzzing review (issue 11): each operand searched every identifier seen
        // so far, so 80,000 distinct names in one condition took minutes.
        let src = (0..40_000)
            .map(|i| format!("v{i} < w{i}"))
            .collect::<Vec<_>>()
            .join(" and ");
        let started = crate::spec::thread_cpu_time();
        let e = parse(&src);
        assert_eq!(e.identifiers().len(), 80_000);
        assert_eq!(e.identifiers()[1], "w0");
        assert_eq!(
            e.eval(&|n| Some(if n.starts_with('v') { 0.0 } else { 1.0 })),
            Ok(true)
        );
        let took = crate::spec::thread_cpu_time() - started;
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        // Repeated names share one slot.
        assert_eq!(parse("a < b and b < a or a == 1").identifiers(), ["a", "b"]);
    }

    /// Property tests: no panic on any text, and generated trees printed and parsed again give
    /// the same tree and the same verdicts.
    mod props {
        use super::*;
        use proptest::prelude::*;

        /// A generated condition: the tree and its fully parenthesised text.
        #[derive(Debug, Clone)]
        enum Gen {
            Lit(bool),
            Not(Box<Gen>),
            And(Vec<Gen>),
            Or(Vec<Gen>),
            Cmp(String, &'static str, String),
        }

        fn print(g: &Gen) -> String {
            let group = |items: &[Gen], sep: &str| {
                items
                    .iter()
                    .map(|g| format!("({})", print(g)))
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            match g {
                Gen::Lit(b) => b.to_string(),
                Gen::Not(inner) => format!("not ({})", print(inner)),
                Gen::And(items) => group(items, " and "),
                Gen::Or(items) => group(items, " || "),
                Gen::Cmp(a, op, b) => format!("{a} {op} {b}"),
            }
        }

        /// The same shape as `tests::shape` renders for a parsed tree.
        fn shape_of(g: &Gen) -> String {
            let join = |items: &[Gen], sep: &str| {
                let parts: Vec<String> = items.iter().map(shape_of).collect();
                format!("({})", parts.join(sep))
            };
            let cmp = |op: &str| match op {
                "<" => "Lt",
                "<=" => "Le",
                ">" => "Gt",
                ">=" => "Ge",
                "==" => "Eq",
                _ => "Ne",
            };
            let operand = |o: &str| o.parse::<f64>().map(|v| v.to_string()).unwrap_or(o.into());
            match g {
                Gen::Lit(b) => b.to_string(),
                Gen::Not(inner) => format!("!{}", shape_of(inner)),
                Gen::And(items) => join(items, " & "),
                Gen::Or(items) => join(items, " | "),
                Gen::Cmp(a, op, b) => format!("{}{}{}", operand(a), cmp(op), operand(b)),
            }
        }

        fn operand() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z_][a-z0-9_.]{0,8}".prop_filter("not a keyword", |s| !matches!(
                    s.as_str(),
                    "and" | "or" | "not" | "true" | "false"
                )),
                (-1e6f64..1e6).prop_map(|v| v.to_string()),
                (0u32..1000).prop_map(|v| v.to_string()),
            ]
        }

        fn tree() -> impl Strategy<Value = Gen> {
            let ops = prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
            let leaf = prop_oneof![
                any::<bool>().prop_map(Gen::Lit),
                (operand(), ops, operand()).prop_map(|(a, op, b)| Gen::Cmp(a, op, b)),
            ];
            leaf.prop_recursive(5, 40, 4, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|g| Gen::Not(Box::new(g))),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Gen::And),
                    prop::collection::vec(inner, 2..4).prop_map(Gen::Or),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_parses_or_fails_inside_it(src in "\\PC{0,64}") {
                match Expr::parse(&src) {
                    Ok(e) => {
                        let _ = e.eval(&|_| Some(1.0));
                    }
                    Err(e) => prop_assert!(e.offset <= src.len(), "{e:?}"),
                }
            }

            #[test]
            fn token_soup_never_panics(
                parts in prop::collection::vec(prop::sample::select(vec![
                    "a", "b.c", "1", "-2.5e3", "1e999", "5%", "(", ")", "<", "<=", ">", ">=",
                    "==", "!=", "=", "!", "&&", "||", "&", "|", "and", "or", "not", "AND",
                    "true", "false", " ", "\t", "é",
                ]), 0..40)
            ) {
                let src = parts.concat();
                match Expr::parse(&src) {
                    Ok(e) => {
                        let _ = e.eval(&|_| Some(0.5));
                    }
                    Err(e) => {
                        prop_assert!(e.offset <= src.len(), "{e:?}");
                        prop_assert!(!e.message.is_empty());
                    }
                }
            }

            #[test]
            fn printed_trees_parse_back_to_the_same_tree(g in tree()) {
                let text = print(&g);
                let e = Expr::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(shape(&e), shape_of(&g), "{}", text);
                // Printed again from its own source, the tree and the verdicts are the same.
                let again = parse(&e.to_string());
                prop_assert_eq!(&again.root, &e.root);
                for v in [-1.0, 0.0, 0.5, 1e6] {
                    prop_assert_eq!(again.eval(&|_| Some(v)), e.eval(&|_| Some(v)));
                }
            }
        }
    }

    #[test]
    fn traits() {
        let e = parse("error_rate < 0.05");
        assert_eq!(e.source(), "error_rate < 0.05");
        assert_eq!(e.to_string(), "error_rate < 0.05");
        assert_eq!(format!("{e:?}"), "Expr(\"error_rate < 0.05\")");
        assert_eq!(e.clone(), e);
        assert_ne!(parse("error_rate<0.05"), e);
        let boxed: Box<dyn std::error::Error> = Box::new(perr("x"));
        assert_eq!(
            boxed.to_string(),
            "at column 2: expected a comparison operator after `x`"
        );
    }
}
