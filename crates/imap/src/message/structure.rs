//! ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2) from the MIME tree.

use tern_proto::imap::{
    BodyFields, BodyStructure, Disposition, Envelope, MultipartExtension, SinglePartExtension,
    SinglePartKind,
};

use super::address::parse_address_list;
use super::header::{HeaderBlock, lossy, parse_disposition, parse_language};
use super::mime::{Content, Part};

/// The envelope of the message whose header is `header`.
pub(super) fn envelope(raw: &[u8], header: &HeaderBlock) -> Envelope {
    // RFC 9051 §7.5.2: strings are the header values; NIL when the field is absent.
    let text = |name: &str| header.value(raw, name);
    let addresses = |name: &str| {
        header
            .value(raw, name)
            .map(|v| parse_address_list(&v))
            .unwrap_or_default()
    };
    let from = addresses("From");
    // RFC 9051 §7.5.2: absent or empty Sender and Reply-To are set to From.
    let or_from = |list: Vec<_>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: text("Date"),
        subject: text("Subject"),
        sender: or_from(addresses("Sender")),
        reply_to: or_from(addresses("Reply-To")),
        to: addresses("To"),
        cc: addresses("Cc"),
        bcc: addresses("Bcc"),
        in_reply_to: text("In-Reply-To"),
        message_id: text("Message-ID"),
        from,
    }
}

/// The structure of `part`; `extensions` adds the BODYSTRUCTURE extension data.
pub(super) fn body_structure(raw: &[u8], part: &Part, extensions: bool) -> BodyStructure {
    let media = &part.media;
    match &part.content {
        // RFC 9051 §7.5.2: body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        Content::Multipart(parts) => BodyStructure::Multi {
            parts: parts
                .iter()
                .map(|p| body_structure(raw, p, extensions))
                .collect(),
            subtype: media.subtype.to_ascii_uppercase(),
            extension: extensions.then(|| {
                let (disposition, language, location) = common_extension(raw, part);
                // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang ...]]]
                MultipartExtension {
                    params: params(&media.params),
                    disposition,
                    language,
                    location,
                    extensions: Vec::new(),
                }
            }),
        },
        content => {
            let subtype = media.subtype.to_ascii_uppercase();
            let kind = match content {
                // body-type-msg = media-message SP body-fields SP envelope SP body SP
                //                 body-fld-lines
                Content::Message(inner) => SinglePartKind::Message {
                    subtype,
                    envelope: Box::new(envelope(raw, &inner.header)),
                    body: Box::new(body_structure(raw, inner, extensions)),
                    lines: part.lines(raw),
                },
                // body-type-text = media-text SP body-fields SP body-fld-lines
                _ if media.media_type == "text" => SinglePartKind::Text {
                    subtype,
                    lines: part.lines(raw),
                },
                // A message/rfc822 that is not parsed as one (encoded, or nested too deep)
                // would be read by clients as body-type-msg and need an envelope, so it is
                // described as opaque data.
                _ if media.is("message", "rfc822") || media.is("message", "global") => {
                    SinglePartKind::Basic {
                        media_type: "APPLICATION".to_owned(),
                        subtype: "OCTET-STREAM".to_owned(),
                    }
                }
                // body-type-basic = media-basic SP body-fields
                _ => SinglePartKind::Basic {
                    media_type: media.media_type.to_ascii_uppercase(),
                    subtype,
                },
            };
            BodyStructure::Single {
                fields: body_fields(raw, part),
                kind,
                extension: extensions.then(|| {
                    let (disposition, language, location) = common_extension(raw, part);
                    // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang ...]]]
                    SinglePartExtension {
                        md5: string(raw, part, "Content-MD5"),
                        disposition,
                        language,
                        location,
                        extensions: Vec::new(),
                    }
                }),
            }
        }
    }
}

// RFC 9051 §7.5.2: body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
//                                body-fld-enc SP body-fld-octets
fn body_fields(raw: &[u8], part: &Part) -> BodyFields {
    BodyFields {
        params: params(&part.media.params),
        id: string(raw, part, "Content-ID"),
        description: string(raw, part, "Content-Description"),
        encoding: part.encoding(raw).to_ascii_uppercase(),
        // body-fld-octets: the size of the body in its transfer encoding.
        size: u64::try_from(part.body(raw).len()).unwrap_or(u64::MAX),
    }
}

type Common = (Option<Disposition>, Vec<String>, Option<String>);

// body-fld-dsp (RFC 2183), body-fld-lang (RFC 3282), body-fld-loc (RFC 2557).
fn common_extension(raw: &[u8], part: &Part) -> Common {
    let disposition = part
        .header
        .value(raw, "Content-Disposition")
        .and_then(|v| parse_disposition(&v))
        .map(|(kind, p)| Disposition {
            kind: kind.to_ascii_uppercase(),
            params: params(&p),
        });
    let language = part
        .header
        .value(raw, "Content-Language")
        .map(|v| parse_language(&v))
        .unwrap_or_default();
    (disposition, language, string(raw, part, "Content-Location"))
}

/// Parameter names upper-cased (as in the RFC 9051 examples), values as sent.
fn params(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect()
}

fn string(raw: &[u8], part: &Part, name: &str) -> Option<String> {
    part.header.value(raw, name).map(|v| lossy(&v).into_owned())
}
