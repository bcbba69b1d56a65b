//! The binary form of ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2) in the message cache.
//!
//! Hand-written rather than a serde format: the values are two small recursive types, the
//! encoding is a few dozen lines, and decoding 50,000 envelopes for `FETCH 1:* (ENVELOPE)`
//! must cost next to nothing. Layout, all integers LEB128 varints:
//! - every encoding starts with [`VERSION`]; an unknown version decodes to `None` and the
//!   caller parses the blob instead, so the format can change without a migration;
//! - a string is its length then its octets; an optional string (`nstring`) is 0 for NIL,
//!   else length + 1 then the octets;
//! - a list is its length then its elements; an option is a 0/1 byte then the value;
//! - Sender and Reply-To are one byte 1 when they equal From (the usual case, RFC 9051
//!   §7.5.2 defaults them to From), else 0 and the list.
//!
//! Decoding is defensive (the bytes come from disk): lengths are checked against what is
//! left, nesting is bounded, strings must be UTF-8 where the type says `String`, and trailing
//! octets make the whole value invalid.

use tern_proto::imap::{
    Address, BodyExtension, BodyFields, BodyStructure, Disposition, Envelope, MultipartExtension,
    SinglePartExtension, SinglePartKind,
};

/// Format version of both encodings.
const VERSION: u8 = 1;

/// Deeper values are refused when decoding. The MIME scanner stops at 32 levels
/// (`mime::MAX_DEPTH`); each level is at most one BODYSTRUCTURE level.
const MAX_DEPTH: usize = 64;

/// ENVELOPE in the cache format.
pub(super) fn encode_envelope(env: &Envelope) -> Vec<u8> {
    let mut w = Writer(vec![VERSION]);
    w.envelope(env);
    w.0
}

/// BODYSTRUCTURE (with extension data) in the cache format.
pub(super) fn encode_body(body: &BodyStructure) -> Vec<u8> {
    let mut w = Writer(vec![VERSION]);
    w.body(body);
    w.0
}

/// The envelope [`encode_envelope`] wrote; `None` for any other input.
pub(super) fn decode_envelope(data: &[u8]) -> Option<Envelope> {
    let mut r = Reader::new(data)?;
    let env = r.envelope()?;
    r.finish(env)
}

/// The structure [`encode_body`] wrote; `None` for any other input.
pub(super) fn decode_body(data: &[u8]) -> Option<BodyStructure> {
    let mut r = Reader::new(data)?;
    let body = r.body(0)?;
    r.finish(body)
}

struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    fn nbytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.varint(0),
            Some(b) => {
                self.varint(b.len() as u64 + 1);
                self.0.extend_from_slice(b);
            }
        }
    }

    fn flag(&mut self, on: bool) {
        self.0.push(u8::from(on));
    }

    fn addresses(&mut self, list: &[Address]) {
        self.len(list.len());
        for a in list {
            self.nbytes(a.name.as_deref());
            self.nbytes(a.adl.as_deref());
            self.nbytes(a.mailbox.as_deref());
            self.nbytes(a.host.as_deref());
        }
    }

    /// Sender and Reply-To: usually equal to From.
    fn addresses_or_from(&mut self, list: &[Address], from: &[Address]) {
        let same = list == from;
        self.flag(same);
        if !same {
            self.addresses(list);
        }
    }

    fn envelope(&mut self, env: &Envelope) {
        self.nbytes(env.date.as_deref());
        self.nbytes(env.subject.as_deref());
        self.addresses(&env.from);
        self.addresses_or_from(&env.sender, &env.from);
        self.addresses_or_from(&env.reply_to, &env.from);
        self.addresses(&env.to);
        self.addresses(&env.cc);
        self.addresses(&env.bcc);
        self.nbytes(env.in_reply_to.as_deref());
        self.nbytes(env.message_id.as_deref());
    }

    fn params(&mut self, params: &[(String, String)]) {
        self.len(params.len());
        for (k, v) in params {
            self.bytes(k.as_bytes());
            self.bytes(v.as_bytes());
        }
    }

    fn nstr(&mut self, s: Option<&String>) {
        self.nbytes(s.map(String::as_bytes));
    }

    fn strings(&mut self, list: &[String]) {
        self.len(list.len());
        for s in list {
            self.bytes(s.as_bytes());
        }
    }

    /// body-fld-dsp, body-fld-lang, body-fld-loc and further extensions: the tail both
    /// extension kinds share.
    fn common(
        &mut self,
        disposition: Option<&Disposition>,
        language: &[String],
        location: Option<&String>,
        extensions: &[BodyExtension],
    ) {
        self.flag(disposition.is_some());
        if let Some(d) = disposition {
            self.bytes(d.kind.as_bytes());
            self.params(&d.params);
        }
        self.strings(language);
        self.nstr(location);
        self.len(extensions.len());
        for e in extensions {
            self.extension(e);
        }
    }

    fn extension(&mut self, e: &BodyExtension) {
        match e {
            BodyExtension::String(s) => {
                self.0.push(0);
                self.nstr(s.as_ref());
            }
            BodyExtension::Number(n) => {
                self.0.push(1);
                self.varint(*n);
            }
            BodyExtension::List(list) => {
                self.0.push(2);
                self.len(list.len());
                for e in list {
                    self.extension(e);
                }
            }
        }
    }

    fn body(&mut self, body: &BodyStructure) {
        match body {
            BodyStructure::Single {
                fields,
                kind,
                extension,
            } => {
                self.0.push(0);
                self.params(&fields.params);
                self.nstr(fields.id.as_ref());
                self.nstr(fields.description.as_ref());
                self.bytes(fields.encoding.as_bytes());
                self.varint(fields.size);
                match kind {
                    SinglePartKind::Basic {
                        media_type,
                        subtype,
                    } => {
                        self.0.push(0);
                        self.bytes(media_type.as_bytes());
                        self.bytes(subtype.as_bytes());
                    }
                    SinglePartKind::Text { subtype, lines } => {
                        self.0.push(1);
                        self.bytes(subtype.as_bytes());
                        self.varint(*lines);
                    }
                    SinglePartKind::Message {
                        subtype,
                        envelope,
                        body,
                        lines,
                    } => {
                        self.0.push(2);
                        self.bytes(subtype.as_bytes());
                        self.envelope(envelope);
                        self.body(body);
                        self.varint(*lines);
                    }
                }
                self.flag(extension.is_some());
                if let Some(ext) = extension {
                    self.nstr(ext.md5.as_ref());
                    self.common(
                        ext.disposition.as_ref(),
                        &ext.language,
                        ext.location.as_ref(),
                        &ext.extensions,
                    );
                }
            }
            BodyStructure::Multi {
                parts,
                subtype,
                extension,
            } => {
                self.0.push(1);
                self.len(parts.len());
                for p in parts {
                    self.body(p);
                }
                self.bytes(subtype.as_bytes());
                self.flag(extension.is_some());
                if let Some(ext) = extension {
                    self.params(&ext.params);
                    self.common(
                        ext.disposition.as_ref(),
                        &ext.language,
                        ext.location.as_ref(),
                        &ext.extensions,
                    );
                }
            }
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader after the version octet; `None` for another version.
    fn new(data: &'a [u8]) -> Option<Reader<'a>> {
        (data.first() == Some(&VERSION)).then_some(Reader { data, pos: 1 })
    }

    /// `value` if every octet was read.
    fn finish<T>(self, value: T) -> Option<T> {
        (self.pos == self.data.len()).then_some(value)
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A length or count: never more than the octets left, as every element takes at least
    /// one (so corrupt input cannot ask for a huge allocation).
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.data.len() - self.pos).then_some(n)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn nbytes(&mut self) -> Option<Option<Vec<u8>>> {
        match self.varint()? {
            0 => Some(None),
            n => {
                let n = usize::try_from(n - 1).ok()?;
                Some(Some(self.take(n)?.to_vec()))
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).ok().map(str::to_owned)
    }

    fn nstring(&mut self) -> Option<Option<String>> {
        match self.nbytes()? {
            None => Some(None),
            Some(b) => String::from_utf8(b).ok().map(Some),
        }
    }

    fn addresses(&mut self) -> Option<Vec<Address>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(Address {
                name: self.nbytes()?,
                adl: self.nbytes()?,
                mailbox: self.nbytes()?,
                host: self.nbytes()?,
            });
        }
        Some(out)
    }

    fn addresses_or_from(&mut self, from: &[Address]) -> Option<Vec<Address>> {
        if self.flag()? {
            Some(from.to_vec())
        } else {
            self.addresses()
        }
    }

    fn envelope(&mut self) -> Option<Envelope> {
        let date = self.nbytes()?;
        let subject = self.nbytes()?;
        let from = self.addresses()?;
        let sender = self.addresses_or_from(&from)?;
        let reply_to = self.addresses_or_from(&from)?;
        Some(Envelope {
            date,
            subject,
            sender,
            reply_to,
            to: self.addresses()?,
            cc: self.addresses()?,
            bcc: self.addresses()?,
            in_reply_to: self.nbytes()?,
            message_id: self.nbytes()?,
            from,
        })
    }

    fn params(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push((self.string()?, self.string()?));
        }
        Some(out)
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.string()?);
        }
        Some(out)
    }

    fn common(&mut self) -> Option<(Option<Disposition>, Vec<String>, Option<String>)> {
        let disposition = if self.flag()? {
            Some(Disposition {
                kind: self.string()?,
                params: self.params()?,
            })
        } else {
            None
        };
        Some((disposition, self.strings()?, self.nstring()?))
    }

    fn extensions(&mut self, depth: usize) -> Option<Vec<BodyExtension>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(match self.byte()? {
                0 => BodyExtension::String(self.nstring()?),
                1 => BodyExtension::Number(self.varint()?),
                2 => BodyExtension::List(self.extensions(depth + 1)?),
                _ => return None,
            });
        }
        Some(out)
    }

    fn body(&mut self, depth: usize) -> Option<BodyStructure> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.byte()? {
            0 => {
                let fields = BodyFields {
                    params: self.params()?,
                    id: self.nstring()?,
                    description: self.nstring()?,
                    encoding: self.string()?,
                    size: self.varint()?,
                };
                let kind = match self.byte()? {
                    0 => SinglePartKind::Basic {
                        media_type: self.string()?,
                        subtype: self.string()?,
                    },
                    1 => SinglePartKind::Text {
                        subtype: self.string()?,
                        lines: self.varint()?,
                    },
                    2 => SinglePartKind::Message {
                        subtype: self.string()?,
                        envelope: Box::new(self.envelope()?),
                        body: Box::new(self.body(depth + 1)?),
                        lines: self.varint()?,
                    },
                    _ => return None,
                };
                let extension = if self.flag()? {
                    let md5 = self.nstring()?;
                    let (disposition, language, location) = self.common()?;
                    Some(SinglePartExtension {
                        md5,
                        disposition,
                        language,
                        location,
                        extensions: self.extensions(depth)?,
                    })
                } else {
                    None
                };
                Some(BodyStructure::Single {
                    fields,
                    kind,
                    extension,
                })
            }
            1 => {
                let n = self.len()?;
                let mut parts = Vec::with_capacity(n);
                for _ in 0..n {
                    parts.push(self.body(depth + 1)?);
                }
                let subtype = self.string()?;
                let extension = if self.flag()? {
                    let params = self.params()?;
                    let (disposition, language, location) = self.common()?;
                    Some(MultipartExtension {
                        params,
                        disposition,
                        language,
                        location,
                        extensions: self.extensions(depth)?,
                    })
                } else {
                    None
                };
                Some(BodyStructure::Multi {
                    parts,
                    subtype,
                    extension,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: &str, host: Option<&str>) -> Address {
        Address {
            name: name.map(|s| s.as_bytes().to_vec()),
            adl: None,
            mailbox: Some(mailbox.as_bytes().to_vec()),
            host: host.map(|s| s.as_bytes().to_vec()),
        }
    }

    fn sample_body() -> BodyStructure {
        BodyStructure::Multi {
            parts: vec![
                BodyStructure::Single {
                    fields: BodyFields {
                        params: vec![("CHARSET".into(), "utf-8".into())],
                        id: None,
                        description: Some("d".into()),
                        encoding: "BASE64".into(),
                        size: 300_000,
                    },
                    kind: SinglePartKind::Text {
                        subtype: "PLAIN".into(),
                        lines: 7,
                    },
                    extension: Some(SinglePartExtension {
                        md5: Some("m".into()),
                        disposition: Some(Disposition {
                            kind: "INLINE".into(),
                            params: vec![],
                        }),
                        language: vec!["en".into(), "de".into()],
                        location: None,
                        extensions: vec![
                            BodyExtension::Number(u64::MAX),
                            BodyExtension::List(vec![BodyExtension::String(None)]),
                        ],
                    }),
                },
                BodyStructure::Single {
                    fields: BodyFields::default(),
                    kind: SinglePartKind::Message {
                        subtype: "RFC822".into(),
                        envelope: Box::default(),
                        body: Box::new(BodyStructure::Single {
                            fields: BodyFields::default(),
                            kind: SinglePartKind::Basic {
                                media_type: "IMAGE".into(),
                                subtype: "PNG".into(),
                            },
                            extension: None,
                        }),
                        lines: 0,
                    },
                    extension: None,
                },
            ],
            subtype: "MIXED".into(),
            extension: Some(MultipartExtension {
                params: vec![("BOUNDARY".into(), "b".into())],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn envelopes_round_trip_with_and_without_from_defaults() {
        let from = vec![addr(Some("A"), "a", Some("x.test"))];
        let mut env = Envelope {
            date: Some(b"Mon, 1 Jan 2024 00:00:00 +0000".to_vec()),
            subject: Some("\u{e4}".as_bytes().to_vec()),
            from: from.clone(),
            sender: from.clone(),
            reply_to: from.clone(),
            to: vec![addr(None, "g", None), Address::default()],
            cc: Vec::new(),
            bcc: vec![addr(None, "", Some(""))],
            in_reply_to: None,
            message_id: Some(b"<1@x>".to_vec()),
        };
        assert_eq!(decode_envelope(&encode_envelope(&env)), Some(env.clone()));
        env.reply_to = vec![addr(None, "r", Some("y"))];
        env.sender = Vec::new();
        assert_eq!(decode_envelope(&encode_envelope(&env)), Some(env.clone()));
        assert_eq!(
            decode_envelope(&encode_envelope(&Envelope::default())),
            Some(Envelope::default())
        );
    }

    #[test]
    fn body_structures_round_trip() {
        let body = sample_body();
        assert_eq!(decode_body(&encode_body(&body)), Some(body));
    }

    #[test]
    fn other_versions_truncations_and_trailing_octets_are_refused() {
        let good = encode_body(&sample_body());
        let mut other = good.clone();
        other[0] = VERSION + 1;
        assert_eq!(decode_body(&other), None);
        for n in 0..good.len() {
            assert_eq!(decode_body(&good[..n]), None, "truncated at {n}");
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode_body(&long), None);
        assert_eq!(decode_envelope(&good), None);
        assert_eq!(decode_body(&encode_envelope(&Envelope::default())), None);
    }

    #[test]
    fn huge_lengths_and_deep_nesting_are_refused_without_allocating() {
        // A list claiming 2^60 addresses.
        let mut data = vec![VERSION, 0, 0];
        data.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
        assert_eq!(decode_envelope(&data), None);
        // 100 nested one-part multiparts.
        let mut deep = vec![VERSION];
        for _ in 0..100 {
            deep.extend_from_slice(&[1, 1]);
        }
        assert_eq!(decode_body(&deep), None);
    }
}
