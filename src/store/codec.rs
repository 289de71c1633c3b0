//! How journal lines are kept on disk: each line compressed on its own with zstd against a
//! dictionary of typical lines, so that the hundredth `analysis` line of a canary costs about a
//! tenth of its text, and any line still reads alone (no neighbour needed, no block to unpack).
//!
//! A stored line is either text (lines written before this encoding, or where compressing does
//! not pay) or a blob: one byte naming the dictionary, then a zstd frame that records its own
//! length. The dictionaries are frozen: a line is read back with the one it was written with,
//! so a new dictionary gets a new number and the old ones stay in the build.
//!
//! Owns: encoding and decoding a line. Must not touch: what a line says, or any query.

use std::cell::RefCell;
use std::sync::OnceLock;

use rusqlite::types::ValueRef;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// Dictionary 1: a canary's journal as the engine writes it (JSON lines of every kind, the
/// analysis lines last since they are the most common), used as raw content.
const DICT_1: &[u8] = include_bytes!("journal-1.dict");

/// The dictionary new lines are written with.
const CURRENT: u8 = 1;

/// zstd's level: small lines compress in a few microseconds at this level.
const LEVEL: i32 = 9;

/// The longest line a blob may say it holds (a corrupt length never allocates more).
const MAX_LINE: u64 = 64 << 20;

fn encoder_dict() -> &'static EncoderDictionary<'static> {
    static D: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| EncoderDictionary::copy(DICT_1, LEVEL))
}

fn decoder_dict() -> &'static DecoderDictionary<'static> {
    static D: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| DecoderDictionary::copy(DICT_1))
}

thread_local! {
    static ENCODER: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// A line as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Text(String),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for Stored {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Stored::Text(t) => rusqlite::types::ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Stored::Blob(b) => rusqlite::types::ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// `line` as it is stored: compressed when that makes it smaller (and it is not longer than a
/// blob may say it holds).
pub fn encode(line: &str) -> Stored {
    if line.len() as u64 > MAX_LINE {
        return Stored::Text(line.to_string());
    }
    let packed = ENCODER.with(|e| {
        let mut e = e.borrow_mut();
        if e.is_none() {
            *e = Compressor::with_prepared_dictionary(encoder_dict())
                .and_then(|mut c| {
                    // 4 bytes a line: a blob read with the wrong dictionary is an error, not
                    // wrong text.
                    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
                    Ok(c)
                })
                .ok();
        }
        e.as_mut().and_then(|c| c.compress(line.as_bytes()).ok())
    });
    match packed {
        Some(frame) if frame.len() + 1 < line.len() => {
            let mut out = Vec::with_capacity(frame.len() + 1);
            out.push(CURRENT);
            out.extend_from_slice(&frame);
            Stored::Blob(out)
        }
        _ => Stored::Text(line.to_string()),
    }
}

/// Why a stored line cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("written with dictionary {0}, which this build does not have")]
    Dictionary(u8),
    #[error("not a compressed line: {0}")]
    Frame(String),
    #[error("not text: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// A stored line (text or blob) as text.
pub fn decode(v: ValueRef<'_>) -> Result<String, DecodeError> {
    match v {
        ValueRef::Text(t) => Ok(String::from_utf8(t.to_vec())?),
        ValueRef::Blob(b) => unpack(b),
        other => Err(DecodeError::Frame(format!(
            "a {:?} value",
            other.data_type()
        ))),
    }
}

fn unpack(b: &[u8]) -> Result<String, DecodeError> {
    let Some((&dict, frame)) = b.split_first() else {
        return Err(DecodeError::Frame("empty".into()));
    };
    if dict != 1 {
        return Err(DecodeError::Dictionary(dict));
    }
    let len = zstd::zstd_safe::get_frame_content_size(frame)
        .map_err(|e| DecodeError::Frame(format!("{e:?}")))?
        .ok_or_else(|| DecodeError::Frame("no length".into()))?;
    if len > MAX_LINE {
        return Err(DecodeError::Frame(format!("says it holds {len} bytes")));
    }
    let bytes = DECODER.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(
                Decompressor::with_prepared_dictionary(decoder_dict())
                    .map_err(|e| DecodeError::Frame(e.to_string()))?,
            );
        }
        match d.as_mut() {
            Some(d) => d
                .decompress(frame, len as usize)
                .map_err(|e| DecodeError::Frame(e.to_string())),
            None => Err(DecodeError::Frame("no decoder".into())),
        }
    })?;
    Ok(String::from_utf8(bytes)?)
}

/// Column `i` of a row, a stored line, as text. A line that cannot be read is told (warned in
/// the log) and read as `{"unreadable": "why"}`, which no reader takes for an event: one bad
/// line never makes a whole query (a run's journal, the exporter's feed, a prune) fail.
pub fn column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(decode(r.get_ref(i)?).unwrap_or_else(|e| {
        tracing::warn!("a journal line cannot be read: {e}");
        serde_json::json!({ "unreadable": e.to_string() }).to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANALYSIS: &str = r#"{"ts":"2026-12-02T10:00:31.000Z","deployment":"shop","run":4711,"kind":"analysis","component":"web","verdicts":[{"signal":"error_rate","source":"metric","judgement":"pass","value":0.0041,"expected":"< 0.05","message":"error_rate = 0.0041 (< 0.05)","on_fail":"rollback","baseline":0.0039,"interval":null,"counts":{"failures":0,"failure_limit":2,"no_data":0,"no_data_limit":3,"errors":0,"error_limit":3},"decision":"continue","statistical":false,"critical":false,"warming_up":false,"threshold":0.05}],"next_in_ms":30000,"decision":"continue","reason":null,"served":{"web@1.0.0.r1":40.2,"web@1.1.0.r2":9.9}}"#;

    #[test]
    fn a_line_comes_back_as_it_went_in_and_an_analysis_line_is_much_smaller() {
        let stored = encode(ANALYSIS);
        let Stored::Blob(b) = &stored else {
            panic!("not compressed: {stored:?}")
        };
        assert!(
            b.len() * 3 < ANALYSIS.len(),
            "{} bytes of {}",
            b.len(),
            ANALYSIS.len()
        );
        assert_eq!(
            decode(ValueRef::Blob(b)).unwrap_or_else(|e| panic!("{e}")),
            ANALYSIS
        );
        // Text (written before the encoding, or too short to gain) reads as it is.
        assert_eq!(encode("{}"), Stored::Text("{}".into()));
        assert_eq!(
            decode(ValueRef::Text(b"{\"a\":1}")).unwrap_or_else(|e| panic!("{e}")),
            "{\"a\":1}"
        );
    }

    /// A line that cannot be read never fails a whole query: it reads as `unreadable`.
    #[test]
    fn one_unreadable_line_leaves_the_others_readable() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = crate::store::Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let run = s
            .create_run(&crate::store::tests::new_run("app"))
            .unwrap_or_else(|e| panic!("{e}"));
        let good = s
            .append_event(run, "t", "analysis", ANALYSIS)
            .unwrap_or_else(|e| panic!("{e}"));
        let bad = s
            .append_event(run, "t", "analysis", ANALYSIS)
            .unwrap_or_else(|e| panic!("{e}"));
        s.with_conn(|c| {
            c.execute(
                "UPDATE events SET json = X'01FFFFFFFF' WHERE seq = ?1",
                [bad],
            )
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let rows = s.events(run, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].seq, rows[0].json.as_str()), (good, ANALYSIS));
        assert!(rows[1].json.contains("unreadable"), "{}", rows[1].json);
    }

    /// The dictionary is frozen: lines written with it must read back with the same bytes.
    #[test]
    fn dictionary_1_never_changes() {
        let fnv = DICT_1.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((DICT_1.len(), fnv), (13_322, 0x2dfc_9aa5_fbc4_0b12));
    }

    #[test]
    fn a_corrupt_or_unknown_blob_is_an_error_not_a_panic() {
        assert!(matches!(
            decode(ValueRef::Blob(&[9, 1, 2, 3])),
            Err(DecodeError::Dictionary(9))
        ));
        assert!(decode(ValueRef::Blob(&[1, 1, 2, 3])).is_err());
        assert!(decode(ValueRef::Blob(&[])).is_err());
        let Stored::Blob(mut b) = encode(ANALYSIS) else {
            panic!("not compressed")
        };
        b.truncate(b.len() / 2);
        assert!(decode(ValueRef::Blob(&b)).is_err());
    }
}
