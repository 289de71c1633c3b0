//! A positioned YAML tree for spec and configuration files.
//!
//! Owns: turning YAML text into [`Node`]s that remember their line and column, with hard limits on
//! input size, nesting depth and alias expansion so hostile input fails fast with bounded memory.
//! Must not touch: the meaning of keys (that is `decode` and `model`) or any I/O beyond the text given.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Largest spec file accepted, in bytes.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to (aliases included).
pub const MAX_NODES: usize = 200_000;

/// A place in the source text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// One YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// The source text of a plain scalar (so `version: 1.10` keeps its text).
    pub raw: Option<String>,
}

/// A mapping key: always a scalar turned into text.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Convert to JSON for free-form fields.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A problem that stops the text from being read at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

fn syntax(pos: Option<Pos>, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        pos,
        message: message.into(),
    }
}

/// Check raw bytes before parsing: size, encoding, binary content.
pub fn check_bytes(bytes: &[u8]) -> Result<&str, SyntaxError> {
    if bytes.len() > MAX_BYTES {
        return Err(syntax(
            None,
            format!(
                "file is {} bytes; specs larger than {} bytes are refused",
                bytes.len(),
                MAX_BYTES
            ),
        ));
    }
    if let Some(i) = bytes.iter().position(|b| *b == 0) {
        let pos = pos_of_byte(bytes, i);
        return Err(syntax(
            Some(pos),
            "binary data (NUL byte): this is not a YAML text file",
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let pos = pos_of_byte(bytes, e.valid_up_to());
            return Err(syntax(
                Some(pos),
                "invalid UTF-8: this is not a YAML text file",
            ));
        }
    };
    if text.trim().is_empty() {
        return Err(syntax(
            None,
            "file is empty; expected a mapping of spec fields",
        ));
    }
    for (n, line) in text.lines().enumerate() {
        let content = line.trim_start_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if let Some(col) = indent.find('\t') {
            return Err(syntax(
                Some(Pos {
                    line: n + 1,
                    col: col + 1,
                }),
                "tab character in indentation; YAML indents with spaces only",
            ));
        }
    }
    Ok(text)
}

fn pos_of_byte(bytes: &[u8], i: usize) -> Pos {
    let before = &bytes[..i.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    Pos { line, col }
}

/// Parse one YAML document into a positioned tree.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    let mut docs = 0usize;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            let msg = if e.info().contains("recursion limit") {
                format!("nesting deeper than {MAX_DEPTH} levels; refused")
            } else {
                e.info().to_string()
            };
            syntax(Some(Pos::from_marker(e.marker())), msg)
        })?;
        let pos = Pos::from_marker(&mark);
        match ev {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart => {
                docs += 1;
                if docs > 1 {
                    return Err(syntax(
                        Some(pos),
                        "more than one YAML document; a spec file holds exactly one",
                    ));
                }
            }
            Event::Alias(id) => {
                let node = b
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| syntax(Some(pos), "alias to an unknown anchor"))?;
                b.nodes += count_nodes(&node);
                if b.nodes > MAX_NODES {
                    return Err(alias_bomb(pos));
                }
                let mut n = (*node).clone();
                n.pos = pos;
                b.push_value(n, 0)?;
            }
            Event::Scalar(value, style, anchor, _tag) => {
                b.bump(pos)?;
                let raw = (style == TScalarStyle::Plain).then(|| value.clone());
                let kind = scalar_kind(value, style);
                b.push_value(Node { kind, pos, raw }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => {
                b.bump(pos)?;
                b.open(Frame::Seq(Vec::new()), pos, anchor)?;
            }
            Event::MappingStart(anchor, _) => {
                b.bump(pos)?;
                b.open(
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        names: HashSet::new(),
                    },
                    pos,
                    anchor,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (frame, fpos, anchor) = b
                    .stack
                    .pop()
                    .ok_or_else(|| syntax(Some(pos), "unbalanced collection end"))?;
                let kind = match frame {
                    Frame::Seq(items) => Kind::Seq(items),
                    Frame::Map { entries, .. } => Kind::Map(entries),
                };
                b.push_value(
                    Node {
                        kind,
                        pos: fpos,
                        raw: None,
                    },
                    anchor,
                )?;
            }
        }
    }
    b.root
        .ok_or_else(|| syntax(None, "file is empty; expected a mapping of spec fields"))
}

fn alias_bomb(pos: Pos) -> SyntaxError {
    syntax(
        Some(pos),
        format!("document expands to more than {MAX_NODES} nodes (alias bomb?); refused"),
    )
}

fn count_nodes(n: &Node) -> usize {
    // Iterative to keep the stack flat on adversarial trees.
    let mut count = 0;
    let mut todo = vec![n];
    while let Some(n) = todo.pop() {
        count += 1;
        match &n.kind {
            Kind::Seq(items) => todo.extend(items.iter()),
            Kind::Map(entries) => todo.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
        if count > MAX_NODES {
            break;
        }
    }
    count
}

enum Frame {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
        /// The keys so far, so a duplicate is found in constant time (a scan of `entries` made
        /// a mapping with many keys quadratic).
        names: HashSet<String>,
    },
}

struct Builder {
    stack: Vec<(Frame, Pos, usize)>,
    anchors: HashMap<usize, Rc<Node>>,
    nodes: usize,
    root: Option<Node>,
}

impl Builder {
    fn bump(&mut self, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(alias_bomb(pos));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, pos: Pos, anchor: usize) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(syntax(
                Some(pos),
                format!("nesting deeper than {MAX_DEPTH} levels; refused"),
            ));
        }
        self.stack.push((frame, pos, anchor));
        Ok(())
    }

    fn push_value(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor > 0 {
            self.anchors.insert(anchor, Rc::new(node.clone()));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_some() {
                    return Err(syntax(Some(node.pos), "unexpected second root value"));
                }
                self.root = Some(node);
            }
            Some((Frame::Seq(items), _, _)) => items.push(node),
            Some((
                Frame::Map {
                    entries,
                    key,
                    names,
                },
                _,
                _,
            )) => match key.take() {
                None => {
                    let name = match &node.kind {
                        Kind::Str(s) => s.clone(),
                        Kind::Int(i) => i.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        Kind::Null => String::new(),
                        _ => {
                            return Err(syntax(
                                Some(node.pos),
                                "mapping keys must be plain scalars, not lists or mappings",
                            ))
                        }
                    };
                    if !names.insert(name.clone()) {
                        return Err(syntax(Some(node.pos), format!("duplicate key `{name}`")));
                    }
                    *key = Some(Key {
                        name,
                        pos: node.pos,
                    });
                }
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

fn scalar_kind(value: String, style: TScalarStyle) -> Kind {
    if style != TScalarStyle::Plain {
        return Kind::Str(value);
    }
    match value.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    let digits = value.strip_prefix(['-', '+']).unwrap_or(&value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = value.parse::<i64>() {
            return Kind::Int(i);
        }
    }
    let looks_numeric = digits
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+' | b'_'));
    if looks_numeric {
        if let Ok(f) = value.replace('_', "").parse::<f64>() {
            if f.is_finite() {
                return Kind::Float(f);
            }
        }
    }
    Kind::Str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Node, SyntaxError> {
        parse(check_bytes(s.as_bytes())?)
    }

    #[test]
    fn positions_are_one_based() {
        let n = p("a: 1\nb:\n  c: x\n").unwrap();
        let Kind::Map(e) = n.kind else { panic!() };
        assert_eq!(e[1].0.pos, Pos { line: 2, col: 1 });
        let Kind::Map(inner) = &e[1].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos { line: 3, col: 3 });
    }

    #[test]
    fn scalars_resolve() {
        let n = p("[1, 1.5, true, ~, '1', x, -3, 1e3]").unwrap();
        let Kind::Seq(v) = n.kind else { panic!() };
        let kinds: Vec<_> = v.into_iter().map(|n| n.kind).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Int(1),
                Kind::Float(1.5),
                Kind::Bool(true),
                Kind::Null,
                Kind::Str("1".into()),
                Kind::Str("x".into()),
                Kind::Int(-3),
                Kind::Float(1000.0)
            ]
        );
    }

    #[test]
    fn empty_is_refused() {
        assert!(p("").unwrap_err().message.contains("empty"));
        assert!(p("  \n# only a comment\n").is_err());
    }

    #[test]
    fn tabs_binary_and_bad_utf8_are_refused() {
        let e = p("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 2, col: 1 }));
        assert!(e.message.contains("tab"));
        assert!(check_bytes(b"a: 1\n\x00\x01")
            .unwrap_err()
            .message
            .contains("binary"));
        assert!(check_bytes(b"a: \xff\xfe")
            .unwrap_err()
            .message
            .contains("UTF-8"));
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let deep = "[".repeat(100_000);
        let e = p(&deep).unwrap_err();
        assert!(e.message.contains("nesting"), "{e:?}");
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert!(p(&block).unwrap_err().message.contains("nesting"));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let e = p(&s).unwrap_err();
        assert!(e.message.contains("alias"), "{e:?}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = p("a: 1\na: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate"));
        assert_eq!(e.pos, Some(Pos { line: 2, col: 1 }));
    }

    #[test]
    fn a_mapping_with_many_keys_is_built_in_linear_time() {
        // Found in the fuzzing review (issue 11): the duplicate-key check scanned every earlier
        // key, so a 90,000-key mapping (an 800 kB file) took minutes. With a set the builder
        // takes milliseconds; driven directly here so the scanner's debug-build cost is not timed.
        let scalar = |text: String, line: usize| Node {
            kind: Kind::Str(text),
            pos: Pos { line, col: 1 },
            raw: None,
        };
        let mut b = Builder {
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            root: None,
        };
        let map = Frame::Map {
            entries: Vec::new(),
            key: None,
            names: HashSet::new(),
        };
        b.open(map, Pos::default(), 0).unwrap();
        let started = crate::spec::thread_cpu_time();
        for i in 0..90_000 {
            b.push_value(scalar(format!("k{i}"), i + 1), 0).unwrap();
            b.push_value(scalar("1".into(), i + 1), 0).unwrap();
        }
        let took = crate::spec::thread_cpu_time() - started;
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        let e = b
            .push_value(scalar("k89999".into(), 90_001), 0)
            .unwrap_err();
        assert_eq!(e.message, "duplicate key `k89999`");
        assert_eq!(
            e.pos,
            Some(Pos {
                line: 90_001,
                col: 1
            })
        );
        // The same through the text: the duplicate named at its place.
        let text: String = (0..2_000).map(|i| format!("k{i}: 1\n")).collect();
        assert!(p(&text).is_ok());
        let e = p(&format!("{text}k1999: 2\n")).unwrap_err();
        assert_eq!(e.message, "duplicate key `k1999`");
        assert_eq!(
            e.pos,
            Some(Pos {
                line: 2_001,
                col: 1
            })
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = p("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.is_some());
    }
}
