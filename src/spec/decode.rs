//! Turning positioned YAML nodes into typed spec values while collecting every problem.
//!
//! Owns: the [`Diagnostic`] type, the [`FromNode`] trait and its impls for primitive types, the
//! mapping reader that rejects unknown keys with a did-you-mean, and duration parsing.
//! Must not touch: spec rules that relate fields to each other (that is `rules`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::yaml::{Key, Kind, Node, Pos};

/// One problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// A syntax or type error at a place in the text.
    At { pos: Pos, message: String },
    /// A rule violation on a field.
    Field { path: String, message: String },
    /// A problem with the file as a whole.
    File { message: String },
}

impl Diagnostic {
    /// Render with the file name, as `FILE:LINE:COL: message` or `FILE: path: message`.
    pub fn render(&self, file: &str) -> String {
        match self {
            Diagnostic::At { pos, message } => {
                format!("{file}:{}:{}: {message}", pos.line, pos.col)
            }
            Diagnostic::Field { path, message } => format!("{file}: {path}: {message}"),
            Diagnostic::File { message } => format!("{file}: {message}"),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::At { pos, message } => write!(f, "{}:{}: {message}", pos.line, pos.col),
            Diagnostic::Field { path, message } => write!(f, "{path}: {message}"),
            Diagnostic::File { message } => write!(f, "{message}"),
        }
    }
}

/// Collects diagnostics while decoding.
#[derive(Debug, Default)]
pub struct Decoder {
    pub diags: Vec<Diagnostic>,
    /// Paths that already have a type error: rule checks stay quiet about them.
    errored: std::collections::BTreeSet<String>,
}

impl Decoder {
    pub fn at(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::At {
            pos,
            message: message.into(),
        });
    }

    pub fn field(&mut self, path: &str, message: impl Into<String>) {
        if self.errored.contains(path) {
            return;
        }
        self.errored.insert(path.to_string());
        self.diags.push(Diagnostic::Field {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Whether a field already has a problem reported (rules that depend on it stay quiet).
    pub fn has_error(&self, path: &str) -> bool {
        self.errored.contains(path)
    }

    /// A type or syntax error at a node, for a field path.
    pub fn at_path(&mut self, n: &Node, path: &str, message: String) {
        self.errored.insert(path.to_string());
        self.at(n.pos, message);
    }

    fn type_error(&mut self, n: &Node, path: &str, expected: &str) {
        self.errored.insert(path.to_string());
        self.at(
            n.pos,
            format!("{path}: expected {expected}, found {}", n.type_name()),
        );
    }

    /// Read a mapping whose keys must be among `allowed`.
    pub fn obj<'a>(&mut self, n: &'a Node, path: &str, allowed: &[&str]) -> Obj<'a> {
        let entries: &'a [(Key, Node)] = match &n.kind {
            Kind::Map(e) => e,
            Kind::Null => &[],
            _ => {
                self.type_error(n, path, "a mapping");
                &[]
            }
        };
        for (k, _) in entries {
            if !allowed.contains(&k.name.as_str()) {
                let at = join(path, &k.name);
                let msg = match did_you_mean(&k.name, allowed) {
                    Some(s) => format!("{at}: unknown key `{}`; did you mean `{s}`?", k.name),
                    None => format!(
                        "{at}: unknown key `{}`; expected one of: {}",
                        k.name,
                        allowed.join(", ")
                    ),
                };
                self.at(k.pos, msg);
            }
        }
        Obj {
            entries,
            path: path.to_string(),
        }
    }
}

/// Join a field path and a key.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The longest word (in characters) [`did_you_mean`] measures.
pub const SUGGEST_MAX_CHARS: usize = 64;

/// The closest allowed name to `word`, if it is close enough to be a typo: the nearest by
/// Levenshtein distance within a third of the candidate's length (1 to 3 edits; the first one
/// wins a tie), else the first one a single adjacent transposition away (`bleu` -> `blue`).
/// Case, `-` and `_` are ignored. The one suggestion function for specs, configs and themes.
///
/// Words longer than [`SUGGEST_MAX_CHARS`] get no suggestion, and a candidate whose length
/// differs from the word's by more than the largest limit (3) is not measured: an edit distance
/// costs the product of the two lengths, which hostile input made hours long.
pub fn did_you_mean<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    if word.len() > 4 * SUGGEST_MAX_CHARS || word.chars().count() > SUGGEST_MAX_CHARS {
        return None;
    }
    let lw = norm(word);
    let wlen = lw.chars().count();
    let mut best: Option<(usize, &'a str)> = None;
    let mut swapped: Option<&'a str> = None;
    for cand in allowed {
        if cand.len() > 4 * SUGGEST_MAX_CHARS {
            continue;
        }
        let lc = norm(cand);
        // Both distances are at least the difference in length, and no limit is above 3.
        if lc.chars().count().abs_diff(wlen) > 3 {
            continue;
        }
        let d = strsim::levenshtein(&lw, &lc);
        if d <= (cand.len() / 3).clamp(1, 3) {
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, cand));
            }
        } else if swapped.is_none() && strsim::osa_distance(&lw, &lc) == 1 {
            // One edit under OSA but more than one under Levenshtein: a transposition.
            swapped = Some(cand);
        }
    }
    best.map(|(_, c)| c).or(swapped)
}

/// A mapping being read.
pub struct Obj<'a> {
    entries: &'a [(Key, Node)],
    path: String,
}

impl<'a> Obj<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
            .filter(|v| v.kind != Kind::Null)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// A required field; reports it missing and returns the default.
    pub fn req<T: FromNode>(&self, d: &mut Decoder, key: &str) -> T {
        match self.get(key) {
            Some(n) => T::decode(n, &self.path(key), d),
            None => {
                d.field(&self.path(key), "required field is missing");
                T::default()
            }
        }
    }

    /// An optional field.
    pub fn opt<T: FromNode>(&self, d: &mut Decoder, key: &str) -> Option<T> {
        self.get(key).map(|n| T::decode(n, &self.path(key), d))
    }

    /// An optional field with a default.
    pub fn or<T: FromNode>(&self, d: &mut Decoder, key: &str, default: T) -> T {
        self.opt(d, key).unwrap_or(default)
    }

    /// An optional field whose absence means `T::default()`.
    pub fn def<T: FromNode>(&self, d: &mut Decoder, key: &str) -> T {
        self.opt(d, key).unwrap_or_default()
    }
}

/// Decode a value from a node, reporting problems to the decoder.
pub trait FromNode: Sized + Default {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self;
}

impl FromNode for String {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match &n.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => match (&n.raw, &n.kind) {
                (Some(raw), _) => raw.clone(),
                (None, Kind::Int(i)) => i.to_string(),
                (None, Kind::Float(f)) => f.to_string(),
                (None, Kind::Bool(b)) => b.to_string(),
                _ => String::new(),
            },
            _ => {
                d.type_error(n, path, "a string");
                String::new()
            }
        }
    }
}

impl FromNode for bool {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match n.kind {
            Kind::Bool(b) => b,
            _ => {
                d.type_error(n, path, "true or false");
                false
            }
        }
    }
}

impl FromNode for f64 {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match n.kind {
            Kind::Int(i) => i as f64,
            Kind::Float(f) => f,
            _ => {
                d.type_error(n, path, "a number");
                0.0
            }
        }
    }
}

impl FromNode for i64 {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match n.kind {
            Kind::Int(i) => i,
            Kind::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => {
                d.type_error(n, path, "a whole number");
                0
            }
        }
    }
}

impl<T: FromNode> FromNode for Vec<T> {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match &n.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| T::decode(item, &format!("{path}[{i}]"), d))
                .collect(),
            Kind::Null => Vec::new(),
            _ => {
                d.type_error(n, path, "a list");
                Vec::new()
            }
        }
    }
}

impl<T: FromNode> FromNode for BTreeMap<String, T> {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match &n.kind {
            Kind::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.name.clone(), T::decode(v, &join(path, &k.name), d)))
                .collect(),
            Kind::Null => BTreeMap::new(),
            _ => {
                d.type_error(n, path, "a mapping");
                BTreeMap::new()
            }
        }
    }
}

impl FromNode for serde_json::Value {
    fn decode(n: &Node, _path: &str, _d: &mut Decoder) -> Self {
        n.to_json()
    }
}

/// A moment written as RFC 3339 text (`2026-11-30T14:02:00Z`, any offset): when a change was
/// made, for the lead time of changes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Moment(pub chrono::DateTime<chrono::Utc>);

impl TryFrom<String> for Moment {
    type Error = String;
    fn try_from(s: String) -> Result<Moment, String> {
        chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Moment(t.with_timezone(&chrono::Utc)))
            .map_err(|e| format!("expected an RFC 3339 time like 2026-11-30T14:02:00Z ({e})"))
    }
}

impl Default for Moment {
    fn default() -> Moment {
        Moment(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
    }
}

impl From<Moment> for String {
    fn from(m: Moment) -> String {
        m.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl FromNode for Moment {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let fallback = Moment::default();
        match &n.kind {
            Kind::Str(s) => match Moment::try_from(s.clone()) {
                Ok(m) => m,
                Err(e) => {
                    d.at_path(n, path, format!("{path}: {e}"));
                    fallback
                }
            },
            _ => {
                d.type_error(n, path, "an RFC 3339 time like \"2026-11-30T14:02:00Z\"");
                fallback
            }
        }
    }
}

/// A length of time written as milliseconds (number) or with a unit (`"30s"`, `"5m"`, `"1h30m"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Millis(pub u64);

/// A length of time written as seconds (number) or with a unit; used by health-check fields.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Secs(pub u64);

impl Millis {
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl Secs {
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
    pub fn from_secs(s: u64) -> Secs {
        Secs(s * 1000)
    }
}

/// Parse `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`, `"1h30m"` into milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bad = || {
        format!("`{s}` is not a duration; write a number of milliseconds or e.g. \"30s\", \"5m\", \"1h30m\"")
    };
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            "w" => 604_800_000.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * factor;
    }
    if !total.is_finite() || total > 1.0e15 {
        return Err(format!("`{s}` is too long a duration"));
    }
    Ok(total.round() as u64)
}

fn decode_time(n: &Node, path: &str, d: &mut Decoder, unit_ms: f64) -> u64 {
    let ms = match &n.kind {
        Kind::Int(i) => *i as f64 * unit_ms,
        Kind::Float(f) => f * unit_ms,
        Kind::Str(s) => match parse_duration(s) {
            Ok(ms) => ms as f64,
            Err(e) => {
                d.at_path(n, path, format!("{path}: {e}"));
                return 0;
            }
        },
        _ => {
            d.type_error(n, path, "a duration (number or string like \"30s\")");
            return 0;
        }
    };
    if ms < 0.0 {
        d.field(path, "must be >= 0");
        return 0;
    }
    if ms > 1.0e15 {
        d.field(path, "is too long a duration");
        return 0;
    }
    ms.round() as u64
}

impl FromNode for Millis {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        Millis(decode_time(n, path, d, 1.0))
    }
}

impl FromNode for Secs {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        Secs(decode_time(n, path, d, 1000.0))
    }
}

/// Numbers as people read them: no trailing zeros, 4 significant decimals.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Render milliseconds as a short human duration (`10m`, `1h30m`, `2.5s`).
pub fn human(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) && ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(600_000), "10m");
        assert_eq!(human(5_400_000), "1h30m");
        assert_eq!(human(1500), "1.5s");
        assert_eq!(human(0), "0s");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("replica", &["replicas", "version"]),
            Some("replicas")
        );
        assert_eq!(
            did_you_mean("healthcheck", &["healthCheck"]),
            Some("healthCheck")
        );
        assert_eq!(did_you_mean("zzzzzz", &["replicas"]), None);
    }

    #[test]
    fn suggestion_limits_ties_and_transpositions() {
        // Case, `-` and `_` do not count as edits.
        assert_eq!(
            did_you_mean("Health_Check", &["healthCheck"]),
            Some("healthCheck")
        );
        // The limit is a third of the candidate's length, at least 1 and at most 3.
        assert_eq!(did_you_mean("nme", &["name"]), Some("name"));
        assert_eq!(did_you_mean("nm", &["name"]), None);
        assert_eq!(did_you_mean("strat", &["strategy"]), None);
        assert_eq!(did_you_mean("stratey", &["strategy"]), Some("strategy"));
        assert_eq!(
            did_you_mean("infra", &["infrastructure"]),
            None,
            "9 edits is past the cap of 3"
        );
        // The nearest wins, the first of equals.
        assert_eq!(did_you_mean("cab", &["cat", "cob"]), Some("cat"));
        assert_eq!(did_you_mean("cot", &["cat", "cot"]), Some("cot"));
        // A swapped pair is suggested even where two edits are over the limit, but a
        // candidate within the limit is preferred to it.
        assert_eq!(did_you_mean("bleu", &["blue"]), Some("blue"));
        assert_eq!(did_you_mean("bleu", &["blue", "bled"]), Some("bled"));
        assert_eq!(did_you_mean("eman", &["name"]), None);
        assert_eq!(did_you_mean("x", &[]), None);
        // Characters, not bytes.
        assert_eq!(did_you_mean("gré", &["gris"]), None);
        assert_eq!(did_you_mean("élan", &["éaln"]), Some("éaln"));
    }

    #[test]
    fn suggestions_for_huge_words_are_not_measured() {
        // Found in the fuzzing review (issue 11): a 200,000-character dependency next to a
        // 200,000-character component id took a 4e10-step edit distance.
        let (a, b) = ("a".repeat(200_000), "b".repeat(200_000));
        let started = crate::spec::thread_cpu_time();
        assert_eq!(did_you_mean(&b, &[a.as_str()]), None);
        assert_eq!(did_you_mean("nme", &[a.as_str(), "name"]), Some("name"));
        let took = crate::spec::thread_cpu_time() - started;
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        // Up to the limit, suggestions are as before.
        let long = "x".repeat(SUGGEST_MAX_CHARS - 1);
        let typo = format!("{long}y");
        let cand = format!("{long}z");
        assert_eq!(did_you_mean(&typo, &[cand.as_str()]), Some(cand.as_str()));
        let over = format!("{typo}y");
        assert_eq!(did_you_mean(&over, &[format!("{cand}z").as_str()]), None);
    }
}
