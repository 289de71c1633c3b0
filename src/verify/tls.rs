//! A small TLS version probe: which protocol version a server negotiates, and whether it
//! accepts versions below a minimum, from its ServerHello alone.
//!
//! Owns: building a ClientHello that offers a chosen set of versions, and reading the server's
//! answer (ServerHello version, including TLS 1.3's `supported_versions`, or an alert). It never
//! completes a handshake and never checks certificates. Must not touch: anything but one socket.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// TLS versions by their wire codes.
pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

pub fn name(v: u16) -> String {
    match v {
        TLS10 => "TLS 1.0".into(),
        TLS11 => "TLS 1.1".into(),
        TLS12 => "TLS 1.2".into(),
        TLS13 => "TLS 1.3".into(),
        other => format!("version 0x{other:04x}"),
    }
}

/// "1.2" -> 0x0303
pub fn parse_version(s: &str) -> Option<u16> {
    match s
        .trim()
        .trim_start_matches("TLS")
        .trim_start_matches("tls")
        .trim()
    {
        "1.0" | "1" => Some(TLS10),
        "1.1" => Some(TLS11),
        "1.2" => Some(TLS12),
        "1.3" => Some(TLS13),
        _ => None,
    }
}

/// What the server said to one ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello choosing this version.
    Version(u16),
    /// A TLS alert (e.g. protocol_version 70, handshake_failure 40).
    Alert(u8),
    /// Not TLS at all (e.g. plain HTTP), with the first bytes.
    NotTls(Vec<u8>),
    /// Closed without answering.
    Closed,
}

fn u16be(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

fn with_len16(body: &[u8]) -> Vec<u8> {
    let mut v = u16be(body.len() as u16).to_vec();
    v.extend_from_slice(body);
    v
}

fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut v = u16be(kind).to_vec();
    v.extend(with_len16(body));
    v
}

/// A ClientHello offering exactly `versions` (highest first).
pub fn client_hello(versions: &[u16], host: &str) -> Vec<u8> {
    let max_legacy = versions
        .iter()
        .copied()
        .filter(|v| *v <= TLS12)
        .max()
        .unwrap_or(TLS12);
    let mut random = [0u8; 32];
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(1);
    let mut x = seed as u64 | 1;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut body = Vec::new();
    body.extend(u16be(max_legacy));
    body.extend(random);
    body.push(32); // legacy session id (middlebox compatibility)
    body.extend(random.iter().rev());
    let ciphers: [u16; 12] = [
        0x1301, 0x1302, 0x1303, // TLS 1.3
        0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, // ECDHE GCM / ChaCha
        0xc013, 0xc014, 0x002f, // CBC, for TLS 1.0/1.1 servers
    ];
    let mut cs = Vec::new();
    for c in ciphers {
        cs.extend(u16be(c));
    }
    body.extend(with_len16(&cs));
    body.extend([1, 0]); // compression: null
    let mut exts = Vec::new();
    // server_name
    if host.parse::<std::net::IpAddr>().is_err() && !host.is_empty() {
        let mut sni = vec![0u8];
        sni.extend(with_len16(host.as_bytes()));
        exts.extend(extension(0x0000, &with_len16(&sni)));
    }
    // supported_groups: x25519, secp256r1, secp384r1
    exts.extend(extension(
        0x000a,
        &with_len16(&[0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]),
    ));
    // ec_point_formats: uncompressed
    exts.extend(extension(0x000b, &[1, 0]));
    // signature_algorithms
    let sigs: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    let mut sa = Vec::new();
    for s in sigs {
        sa.extend(u16be(s));
    }
    exts.extend(extension(0x000d, &with_len16(&sa)));
    // renegotiation_info (empty), extended_master_secret
    exts.extend(extension(0xff01, &[0]));
    exts.extend(extension(0x0017, &[]));
    if versions.contains(&TLS13) {
        // supported_versions
        let mut sv = vec![(versions.len() * 2) as u8];
        for v in versions {
            sv.extend(u16be(*v));
        }
        exts.extend(extension(0x002b, &sv));
        // key_share: an x25519 share (any 32 bytes are a valid point for the server to answer)
        let mut ks = u16be(0x001d).to_vec();
        ks.extend(with_len16(&random));
        exts.extend(extension(0x0033, &with_len16(&ks)));
        // psk_key_exchange_modes: psk_dhe_ke
        exts.extend(extension(0x002d, &[1, 1]));
    } else if versions.len() > 1 || versions.first() != Some(&max_legacy) {
        let mut sv = vec![(versions.len() * 2) as u8];
        for v in versions {
            sv.extend(u16be(*v));
        }
        exts.extend(extension(0x002b, &sv));
    }
    body.extend(with_len16(&exts));
    let mut hs = vec![0x01];
    let len = body.len() as u32;
    hs.extend(&len.to_be_bytes()[1..]);
    hs.extend(body);
    let mut record = vec![0x16];
    record.extend(u16be(TLS10));
    record.extend(with_len16(&hs));
    record
}

/// Read the server's first answer to a ClientHello.
pub fn parse_answer(bytes: &[u8]) -> Answer {
    if bytes.is_empty() {
        return Answer::Closed;
    }
    match bytes[0] {
        0x15 if bytes.len() >= 7 => Answer::Alert(bytes[6]),
        0x16 if bytes.len() >= 11 && bytes[5] == 0x02 => {
            let hs = &bytes[5..];
            let legacy = u16::from_be_bytes([hs[4], hs[5]]);
            // type(1) len(3) version(2) random(32) sid_len(1)
            let mut i = 4 + 2 + 32;
            let Some(&sid) = hs.get(i) else {
                return Answer::Version(legacy);
            };
            i += 1 + sid as usize + 2 + 1; // session id, cipher, compression
            let Some(ext_len) = hs
                .get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            else {
                return Answer::Version(legacy);
            };
            i += 2;
            let end = (i + ext_len).min(hs.len());
            while i + 4 <= end {
                let kind = u16::from_be_bytes([hs[i], hs[i + 1]]);
                let len = u16::from_be_bytes([hs[i + 2], hs[i + 3]]) as usize;
                if kind == 0x002b && len == 2 && i + 6 <= hs.len() {
                    return Answer::Version(u16::from_be_bytes([hs[i + 4], hs[i + 5]]));
                }
                i += 4 + len;
            }
            Answer::Version(legacy)
        }
        _ => Answer::NotTls(bytes.iter().take(16).copied().collect()),
    }
}

/// Offer `versions` to `addr` and report the answer.
pub async fn probe(addr: &str, versions: &[u16], timeout: Duration) -> Result<Answer, String> {
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(&client_hello(versions, host))
            .await
            .map_err(|e| format!("write to {addr}: {e}"))?;
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        // Read until the ServerHello's extensions are in (or the peer stops).
        while got.len() < 5 || got.len() < 5 + u16::from_be_bytes([got[3], got[4]]) as usize {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() > 16384 {
                break;
            }
        }
        Ok::<_, String>(parse_answer(&got))
    };
    tokio::time::timeout(timeout, talk)
        .await
        .map_err(|_| format!("{addr}: no TLS answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("1.2"), Some(TLS12));
        assert_eq!(parse_version("TLS1.3"), Some(TLS13));
        assert_eq!(parse_version("2"), None);
    }

    #[test]
    fn answers_parse() {
        assert_eq!(parse_answer(&[]), Answer::Closed);
        assert_eq!(parse_answer(&[0x15, 3, 3, 0, 2, 2, 70]), Answer::Alert(70));
        assert!(matches!(
            parse_answer(b"HTTP/1.1 400 Bad"),
            Answer::NotTls(_)
        ));
        // A minimal TLS 1.2 ServerHello without extensions.
        let mut sh = vec![0x16, 3, 3, 0, 0, 0x02, 0, 0, 0, 3, 3];
        sh.extend([0u8; 32]);
        sh.extend([0, 0xc0, 0x2f, 0]);
        assert_eq!(parse_answer(&sh), Answer::Version(TLS12));
    }

    #[test]
    fn hello_is_well_formed() {
        let h = client_hello(&[TLS13, TLS12], "example.com");
        assert_eq!(h[0], 0x16);
        let len = u16::from_be_bytes([h[3], h[4]]) as usize;
        assert_eq!(h.len(), 5 + len);
        assert_eq!(h[5], 0x01);
    }
}
